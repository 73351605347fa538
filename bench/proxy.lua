-- wrk script of bench/proxy.sh: every request is the same small chat completion
-- (max_tokens 1, temperature 0, seed 1) for the model named by PROXY_MODEL (tiny).
-- At the end it prints "statuses: CODE=COUNT ..." and the body of the first answer
-- that was not a 200, if any.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- the child's own key (bench/proxy.sh reads it from the child's environment)
if os.getenv("PROXY_CHILD_KEY") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("PROXY_CHILD_KEY")
end
wrk.body = '{"model":"' .. (os.getenv("PROXY_MODEL") or "tiny") .. '","messages":' ..
    '[{"role":"user","content":"Hello"}],"max_tokens":1,"temperature":0,"seed":1}'

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    first_error = nil
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status ~= 200 and first_error == nil then
        first_error = status .. " " .. string.sub(body or "", 1, 300)
    end
end

function done(summary, latency, requests)
    local all, err = {}, nil
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses")) do
            all[code] = (all[code] or 0) + n
        end
        err = err or t:get("first_error")
    end
    local line = "statuses:"
    for code, n in pairs(all) do
        line = line .. " " .. code .. "=" .. n
    end
    print(line)
    if err then
        print("first error: " .. err)
    end
end
