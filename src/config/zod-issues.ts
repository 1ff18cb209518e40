import type { z } from 'zod';

/** One line per problem, each with the path it is about, so a user can fix all of them at once. */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
      return `  - ${where}: ${issue.message}`;
    })
    .join('\n');
}
