/**
 * The worklist's "open" link: api.viewerUrlTemplate with the study's UID put in, e.g.
 *   OHIF                 https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}
 *   Orthanc Stone Web    http://orthanc:8042/stone-webviewer/index.html?study={StudyInstanceUID}
 * Pure; the template is checked once, when the configuration is read.
 */

export const VIEWER_PLACEHOLDER = '{StudyInstanceUID}';

/** What is wrong with a template (undefined: nothing). Only http(s), and only our one placeholder. */
export function viewerTemplateProblem(template: string): string | undefined {
  if (!template.includes(VIEWER_PLACEHOLDER)) return `must contain ${VIEWER_PLACEHOLDER}`;
  const others = template.replaceAll(VIEWER_PLACEHOLDER, '').match(/\{[^}]*\}/g);
  if (others) return `has an unknown placeholder ${others[0]} (only ${VIEWER_PLACEHOLDER})`;
  let url: URL;
  try {
    // A UID of digits and dots stands in: the template must be a URL once it is filled in.
    url = new URL(template.replaceAll(VIEWER_PLACEHOLDER, '1.2.3'));
  } catch {
    return 'must be an absolute URL, e.g. https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}';
  }
  // Anything else (javascript:, data:) would run in the worklist page's origin when clicked.
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `must be an http or https URL (not ${url.protocol})`;
  if (url.username || url.password) return 'must not carry a user name or password';
  return undefined;
}

/** The link for one study (the UID is percent-encoded, though a valid UID needs none). */
export function viewerUrl(template: string, studyInstanceUID: string): string {
  return template.replaceAll(VIEWER_PLACEHOLDER, encodeURIComponent(studyInstanceUID));
}
