-- wrk script: POST /api/v1/validate with pre-made JSON bodies, one per line, in file order.
--   TESSERA_WRK_KEY=<application key> wrk -t1 -c8 -d15s --latency -s scripts/wrk-validate.lua \
--       http://127.0.0.1:8181 -- LINES_FILE
-- The lines come from `tessera-load lines write` (valid HOTP codes, round-robin over the tokens,
-- each counter once); afterwards `tessera-load lines settle --sent N` moves the seed file's
-- counters past what was sent. With one wrk thread the bodies go out in file order, so a token's
-- next code leaves only after about as many requests as there are tokens: never two codes of one
-- token in flight. The key is read from the environment, never from the command line.
-- done() prints one line starting with "RESULT " (JSON) with the counts and wrk's percentiles.
-- wrk 4 corrects its latency figures for coordinated omission before done() sees them (each
-- answer slower than twice the mean interval per connection adds the answers that would have
-- been waiting behind it): these are the figures wrk prints, and the ones compared.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
  sent = 0
  accepted = 0
  rejected = 0
  other = 0
  wrapped = 0
  local key = os.getenv("TESSERA_WRK_KEY")
  if key == nil or key == "" then
    error("TESSERA_WRK_KEY is not set")
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  sent = sent + 1
  local i = ((sent - 1) % #lines) + 1
  if sent > #lines and i == 1 then
    wrapped = wrapped + 1
  end
  return wrk.format(nil, "/api/v1/validate", nil, lines[i])
end

function response(status, headers, body)
  if status ~= 200 then
    other = other + 1
  elseif string.find(body, '"result":"accept"', 1, true) then
    accepted = accepted + 1
  else
    rejected = rejected + 1
  end
end

function done(summary, latency, requests)
  local s, a, r, o, w = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("accepted")
    r = r + t:get("rejected")
    o = o + t:get("other")
    w = w + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"sent": %d, "requests": %d, "duration_us": %d, "accepted": %d, "rejected": %d, ' ..
    '"non200": %d, "wrapped": %d, "err_connect": %d, "err_read": %d, "err_write": %d, ' ..
    '"err_timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d}\n',
    s, summary.requests, summary.duration, a, r, o, w, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
