-- The fair backlog of generation work (see backlog.py for the policy and why).
--
-- backlog(keys=[namespace], args=[command, queue_name, stop_key_prefix, now_ms,
--         heartbeat_timeout_ms, broker_id, prefetch, ...])
--
-- Keys, all under the namespace (`P` = "$namespace:$queue_name.backlog"):
--   P                      hash: message id -> encoded Dramatiq message, every range waiting
--                          in the backlog (its HLEN is the backlog size KEDA reads)
--   P.projects             zset: projects with waiting ranges, by virtual time (slots)
--   P.jobs:$project        zset: that project's jobs with waiting ranges, by virtual time
--   P.ranges:$job          list: "$slot_count $message_id" of that job's waiting ranges
--   P.workers              hash: broker id -> queue prefetch of each worker process
-- and Dramatiq's own (dramatiq 2.2, brokers/redis/dispatch.lua "enqueue"):
--   $namespace:$queue_name       list of message ids ready for workers
--   $namespace:$queue_name.msgs  hash: message id -> encoded message
--   $namespace:__heartbeats__    zset: broker id -> time of its last command
--
-- Commands:
--   enqueue project job (entry body)...  add a job's ranges, then dispatch; returns moved
--   dispatch                             move ranges to the queue up to the low-water
--                                        mark; returns how many moved
--   drop project job                     forget a job's waiting ranges; returns how many

-- luacheck: globals ARGV KEYS redis
local namespace = KEYS[1]
local command = ARGV[1]
local queue_name = ARGV[2]
local stop_key_prefix = ARGV[3]
local now_ms = tonumber(ARGV[4])
local heartbeat_timeout_ms = tonumber(ARGV[5])
local broker_id = ARGV[6]
local prefetch = tonumber(ARGV[7])

local queue = namespace .. ":" .. queue_name
local queue_messages = queue .. ".msgs"
local heartbeats = namespace .. ":__heartbeats__"
local backlog = queue .. ".backlog"
local projects = backlog .. ".projects"
local workers = backlog .. ".workers"

local function jobs_of(project)
    return backlog .. ".jobs:" .. project
end

local function ranges_of(job)
    return backlog .. ".ranges:" .. job
end

-- The virtual time a newly active flow (project, or job in a project) starts at: that of
-- the flow served next, so it neither jumps ahead of a round nor waits for old debts.
local function start_tag(zset)
    local head = redis.call("zrange", zset, 0, 0, "WITHSCORES")
    if head[1] then
        return head[2]
    end
    return 0
end

local function entry_id(entry)
    return string.sub(entry, string.find(entry, " ", 1, true) + 1)
end

-- Removes a job from its project (and the project from the ring once it has no job).
local function retire_job(project, job)
    local jobs = jobs_of(project)
    redis.call("zrem", jobs, job)
    if redis.call("zcard", jobs) == 0 then
        redis.call("zrem", projects, project)
    end
end

local function drop_job(project, job)
    local ranges = ranges_of(job)
    local entries = redis.call("lrange", ranges, 0, -1)
    for i = 1, #entries do
        redis.call("hdel", backlog, entry_id(entries[i]))
    end
    redis.call("del", ranges)
    retire_job(project, job)
    return #entries
end

-- How many messages the queue may hold: the prefetch of every live worker process, so
-- that each can fill its prefetch at once and the rest waits here, in fair order.
-- Workers register their prefetch with each dispatch (and count as live while they do);
-- the others, once their Dramatiq heartbeat is older than the timeout, are forgotten.
local function low_water_mark()
    if prefetch > 0 then
        redis.call("hset", workers, broker_id, prefetch)
    end
    local mark = 0
    local registered = redis.call("hgetall", workers)
    for i = 1, #registered, 2 do
        local seen = redis.call("zscore", heartbeats, registered[i])
        if registered[i] == broker_id or (seen and tonumber(seen) >= now_ms - heartbeat_timeout_ms) then
            mark = mark + tonumber(registered[i + 1])
        else
            redis.call("hdel", workers, registered[i])
        end
    end
    return mark
end

-- Start-time fair queueing on two levels: the project with the least virtual time gives
-- one range of its job with the least virtual time; both advance by the range's slots.
local function dispatch()
    local room = low_water_mark() - redis.call("llen", queue)
    local moved = 0
    -- Bounded: stopped jobs dropped on the way cost a turn each, and never loop forever.
    local turns = room + 1000
    while moved < room and turns > 0 do
        turns = turns - 1
        local project_head = redis.call("zrange", projects, 0, 0, "WITHSCORES")
        if not project_head[1] then
            break
        end
        local project, project_time = project_head[1], tonumber(project_head[2])
        local jobs = jobs_of(project)
        local job_head = redis.call("zrange", jobs, 0, 0, "WITHSCORES")
        if not job_head[1] then
            redis.call("zrem", projects, project)
        else
            local job, job_time = job_head[1], tonumber(job_head[2])
            if redis.call("exists", stop_key_prefix .. job) == 1 then
                drop_job(project, job)
            else
                local ranges = ranges_of(job)
                local entry = redis.call("lpop", ranges)
                if not entry then
                    retire_job(project, job)
                else
                    local space = string.find(entry, " ", 1, true)
                    local slots = tonumber(string.sub(entry, 1, space - 1))
                    local message_id = string.sub(entry, space + 1)
                    local message = redis.call("hget", backlog, message_id)
                    if message then
                        redis.call("hdel", backlog, message_id)
                        redis.call("hset", queue_messages, message_id, message)
                        redis.call("rpush", queue, message_id)
                        moved = moved + 1
                    end
                    if redis.call("llen", ranges) > 0 then
                        redis.call("zadd", jobs, job_time + slots, job)
                    else
                        redis.call("zrem", jobs, job)
                    end
                    if redis.call("zcard", jobs) > 0 then
                        redis.call("zadd", projects, project_time + slots, project)
                    else
                        redis.call("zrem", projects, project)
                    end
                end
            end
        end
    end
    return moved
end

if command == "enqueue" then
    local project, job = ARGV[8], ARGV[9]
    local ranges = ranges_of(job)
    for i = 10, #ARGV, 2 do
        redis.call("hset", backlog, entry_id(ARGV[i]), ARGV[i + 1])
        redis.call("rpush", ranges, ARGV[i])
    end
    local jobs = jobs_of(project)
    if not redis.call("zscore", jobs, job) then
        redis.call("zadd", jobs, start_tag(jobs), job)
    end
    if not redis.call("zscore", projects, project) then
        redis.call("zadd", projects, start_tag(projects), project)
    end
    return dispatch()
elseif command == "dispatch" then
    return dispatch()
elseif command == "drop" then
    return drop_job(ARGV[8], ARGV[9])
end
return redis.error_reply("unknown backlog command " .. tostring(command))
