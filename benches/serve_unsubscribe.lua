-- wrk script for benches/serve.sh: every request is the RFC 8058
-- one-click POST with a token of its own (the paths file is split between
-- the threads, so no token is used twice), and each status is counted.
local paths_file = os.getenv("PATHS")
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local all = {}
  for line in io.lines(paths_file) do
    all[#all + 1] = line
  end
  local n = tonumber(os.getenv("THREADS"))
  paths = {}
  for i = id + 1, #all, n do
    paths[#paths + 1] = all[i]
  end
  next_path = 1
  ok, other, reused = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = "List-Unsubscribe=One-Click"
end

function request()
  if next_path > #paths then
    next_path = 1
    reused = reused + 1
  end
  local path = paths[next_path]
  next_path = next_path + 1
  return wrk.format(nil, path)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other, total_reused = 0, 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
    total_reused = total_reused + t:get("reused")
  end
  io.write(string.format("answers: %d x 200, %d other; token lists restarted %d times\n",
    total_ok, total_other, total_reused))
end
