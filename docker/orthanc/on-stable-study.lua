-- pacs-triage ingest mode "webhook": Orthanc posts to pacs-triage's POST /webhooks/orthanc,
-- with the shared secret in the X-Pacs-Triage-Secret header. Orthanc 1.10 (Debian bookworm) has
-- HttpPost. Two ways, chosen by the WebhookEvent setting:
--   "stable" (default): when a study becomes stable (OnStableStudy, Orthanc's StableAge), its
--     StudyInstanceUID and Orthanc's id.
--   "instance": every stored instance (OnStoredInstance), with its series UID; pacs-triage then
--     waits ingest.stableAgeS after a study's last instance itself (which it must have set) and
--     ignores its own SRs. Lower latency: Orthanc checks StableAge in whole seconds, once a
--     second, so StableAge 1 takes 2-3 s.
--
-- Where to post, the secret and the event, first found wins:
--   orthanc.json: "PacsTriage": { "WebhookUrl": "http://pacs-triage:8080/webhooks/orthanc", "WebhookSecret": "…", "WebhookEvent": "instance" }
--   environment:  PACS_TRIAGE_WEBHOOK_URL, PACS_TRIAGE_WEBHOOK_SECRET, PACS_TRIAGE_WEBHOOK_EVENT
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

local function post(what, body)
  local url = setting('WebhookUrl', 'PACS_TRIAGE_WEBHOOK_URL')
  local secret = setting('WebhookSecret', 'PACS_TRIAGE_WEBHOOK_SECRET')
  if url == nil or secret == nil then
    print('pacs-triage: webhook URL or secret not configured; ' .. what .. ' not posted')
    return
  end
  local headers = { ['Content-Type'] = 'application/json', ['X-Pacs-Triage-Secret'] = secret }
  local ok, answer = pcall(HttpPost, url, DumpJson(body, true), headers)
  if not ok or answer == nil then
    print('pacs-triage: webhook post failed for ' .. what .. ': ' .. tostring(answer))
  end
end

local function perInstance()
  return setting('WebhookEvent', 'PACS_TRIAGE_WEBHOOK_EVENT') == 'instance'
end

function OnStableStudy(studyId, tags, metadata)
  if perInstance() then
    return
  end
  local uid = tags['StudyInstanceUID']
  if uid == nil then
    print('pacs-triage: study ' .. studyId .. ' has no StudyInstanceUID; not posted')
    return
  end
  post('study ' .. studyId, { StudyInstanceUID = uid, OrthancId = studyId, ChangeType = 'StableStudy' })
end

function OnStoredInstance(instanceId, tags, metadata, origin)
  if not perInstance() then
    return
  end
  local study = tags['StudyInstanceUID']
  local series = tags['SeriesInstanceUID']
  if study == nil or series == nil then
    print('pacs-triage: instance ' .. instanceId .. ' has no StudyInstanceUID or SeriesInstanceUID; not posted')
    return
  end
  post('instance ' .. instanceId, { StudyInstanceUID = study, SeriesInstanceUID = series, ChangeType = 'NewInstance' })
end
