-- pacs-triage ingest mode "webhook": when a study becomes stable, Orthanc posts its
-- StudyInstanceUID (and Orthanc's id) to pacs-triage's POST /webhooks/orthanc with the shared
-- secret in the X-Pacs-Triage-Secret header. Orthanc 1.10 (Debian bookworm) has HttpPost.
--
-- Where to post and the secret, first found wins:
--   orthanc.json: "PacsTriage": { "WebhookUrl": "http://pacs-triage:8080/webhooks/orthanc", "WebhookSecret": "…" }
--   environment:  PACS_TRIAGE_WEBHOOK_URL, PACS_TRIAGE_WEBHOOK_SECRET
-- The secret must equal pacs-triage's ingest.webhook.secret (at least 16 characters).
-- A failed post is logged; the study is not lost if pacs-triage also polls (orthanc-changes).

local function setting(key, env)
  local config = GetOrthancConfiguration()
  local own = config ~= nil and config['PacsTriage'] or nil
  if own ~= nil and own[key] ~= nil and own[key] ~= '' then
    return own[key]
  end
  local value = os.getenv(env)
  if value ~= nil and value ~= '' then
    return value
  end
  return nil
end

function OnStableStudy(studyId, tags, metadata)
  local url = setting('WebhookUrl', 'PACS_TRIAGE_WEBHOOK_URL')
  local secret = setting('WebhookSecret', 'PACS_TRIAGE_WEBHOOK_SECRET')
  if url == nil or secret == nil then
    print('pacs-triage: webhook URL or secret not configured; study ' .. studyId .. ' not posted')
    return
  end
  local uid = tags['StudyInstanceUID']
  if uid == nil then
    print('pacs-triage: study ' .. studyId .. ' has no StudyInstanceUID; not posted')
    return
  end
  local body = DumpJson({ StudyInstanceUID = uid, OrthancId = studyId, ChangeType = 'StableStudy' }, true)
  local headers = { ['Content-Type'] = 'application/json', ['X-Pacs-Triage-Secret'] = secret }
  local ok, answer = pcall(HttpPost, url, body, headers)
  if not ok or answer == nil then
    print('pacs-triage: webhook post failed for study ' .. studyId .. ': ' .. tostring(answer))
  end
end
