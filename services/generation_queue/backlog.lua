-- The fair backlog of generation work (see backlog.py for the policy and why).
--
-- backlog(keys=[namespace], args=[command, queue_name, stop_key_prefix, now_ms,
--         heartbeat_timeout_ms, broker_id, ready, ...])
--
-- Keys, all under the namespace (`P` = "$namespace:$queue_name.backlog"):
--   P                      hash: message id -> encoded Dramatiq message, every range waiting
--                          in the backlog (its HLEN is the backlog size KEDA reads)
--   P.projects             zset: projects with waiting ranges, by virtual time (slots)
--   P.jobs:$project        zset: that project's jobs with waiting ranges, by virtual time
--   P.ranges:$job          list: "$slot_count $message_id" of that job's waiting ranges
--   P.held:$job            hash: "$first_slot+$slot_count" -> message id, the ranges the
--                          job had waiting when they were added; an entry whose message id
--                          is no longer in P is stale (the range moved on) and ignored.
--                          Deleted with P.ranges:$job.
--   P.arrivals             counter: members of both zsets are "$arrival $name", with
--                          $arrival zero-padded, so that ties go first come, first served
--   P.workers              hash: broker id -> messages each worker process wants ready
-- A project is in P.projects exactly when P.jobs:$project exists, and a job is in
-- P.jobs:$project exactly when P.ranges:$job exists; only this script changes them.
-- and Dramatiq's own (dramatiq 2.2, brokers/redis/dispatch.lua "enqueue"):
--   $namespace:$queue_name       list of message ids ready for workers
--   $namespace:$queue_name.msgs  hash: message id -> encoded message
--   $namespace:__heartbeats__    zset: broker id -> time of its last command
--   $namespace:$queue_name.DQ[.msgs]  the same for the delay queue (retries, hand-backs)
-- (a message stays in its .msgs hash from enqueue until a worker acks it, prefetched and
-- running messages included, whichever worker holds them, dead or alive),
-- and the workers' granted-calls zsets $namespace:job-calls:$job (stop_flags.py), scored
-- by send-by time.
--
-- Commands:
--   enqueue project job (range entry body)...
--                                        add a job's ranges, except those it already has
--                                        waiting, then dispatch; returns how many moved
--   recover project job (range entry body)...
--                                        the same, only if nothing of the job is anywhere:
--                                        not in the backlog, no message in the queue or the
--                                        delay queue (waiting, prefetched or running), no
--                                        live granted call; returns -1 (and adds nothing)
--                                        when some of it is left
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
local ready = tonumber(ARGV[7])

local queue = namespace .. ":" .. queue_name
local queue_messages = queue .. ".msgs"
local heartbeats = namespace .. ":__heartbeats__"
local backlog = queue .. ".backlog"
local projects = backlog .. ".projects"
local arrivals = backlog .. ".arrivals"
local workers = backlog .. ".workers"

local function jobs_of(project)
    return backlog .. ".jobs:" .. project
end

local function ranges_of(job)
    return backlog .. ".ranges:" .. job
end

local function held_of(job)
    return backlog .. ".held:" .. job
end

local function name_of(member)
    return string.sub(member, string.find(member, " ", 1, true) + 1)
end

local function member_named(zset, name)
    local members = redis.call("zrange", zset, 0, -1)
    for i = 1, #members do
        if name_of(members[i]) == name then
            return members[i]
        end
    end
    return nil
end

-- A newly active flow (project, or job in a project) starts at the virtual time of the
-- flow served next, after the flows already there at that time: within this round, and
-- without a share claimed for the time it was idle.
local function activate(zset, name)
    local head = redis.call("zrange", zset, 0, 0, "WITHSCORES")
    local start = head[2] or 0
    local member = string.format("%015d", redis.call("incr", arrivals)) .. " " .. name
    redis.call("zadd", zset, start, member)
end

local function forget_ranges(job)
    local ranges = ranges_of(job)
    local entries = redis.call("lrange", ranges, 0, -1)
    for i = 1, #entries do
        redis.call("hdel", backlog, name_of(entries[i]))
    end
    redis.call("del", ranges, held_of(job))
    return #entries
end

-- How many messages the queue may hold: what every live worker process wants ready (a
-- few each); the rest waits here, in fair order. Workers register their figure with each
-- dispatch (and count as live while they do); the others, once their Dramatiq heartbeat
-- is older than the timeout, are forgotten.
local function low_water_mark()
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
    if ready > 0 then
        redis.call("hset", workers, broker_id, ready)
    end
    if redis.call("exists", projects) == 0 then
        return 0
    end
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
        local project_member, project_time = project_head[1], tonumber(project_head[2])
        local jobs = jobs_of(name_of(project_member))
        local job_head = redis.call("zrange", jobs, 0, 0, "WITHSCORES")
        local job_member, job_time = job_head[1], tonumber(job_head[2])
        local slots = 0
        if job_member then
            local job = name_of(job_member)
            local ranges = ranges_of(job)
            if redis.call("exists", stop_key_prefix .. job) == 1 then
                forget_ranges(job)
            else
                local entry = redis.call("lpop", ranges)
                if entry then
                    local space = string.find(entry, " ", 1, true)
                    slots = tonumber(string.sub(entry, 1, space - 1))
                    local message_id = string.sub(entry, space + 1)
                    local message = redis.call("hget", backlog, message_id)
                    if message then
                        redis.call("hdel", backlog, message_id)
                        redis.call("hset", queue_messages, message_id, message)
                        redis.call("rpush", queue, message_id)
                        moved = moved + 1
                    end
                end
            end
            if redis.call("exists", ranges) == 1 then
                redis.call("zadd", jobs, job_time + slots, job_member)
            else
                redis.call("zrem", jobs, job_member)
                redis.call("del", held_of(job))
            end
        end
        if redis.call("exists", jobs) == 1 then
            redis.call("zadd", projects, project_time + slots, project_member)
        else
            redis.call("zrem", projects, project_member)
        end
    end
    return moved
end

-- Adds the ranges given from ARGV[10] on, as triples (range, entry, body), except those
-- the job already has waiting: enqueueing a job twice never doubles its ranges.
local function enqueue(project, job)
    local jobs, ranges, held = jobs_of(project), ranges_of(job), held_of(job)
    local added = {}
    for i = 10, #ARGV, 3 do
        local waiting = redis.call("hget", held, ARGV[i])
        if not (waiting and redis.call("hexists", backlog, waiting) == 1) then
            added[#added + 1] = i
        end
    end
    if #added == 0 then
        return
    end
    if redis.call("exists", jobs) == 0 then
        activate(projects, project)
    end
    if redis.call("exists", ranges) == 0 then
        activate(jobs, job)
    end
    for _, i in ipairs(added) do
        local message_id = name_of(ARGV[i + 1])
        redis.call("hset", backlog, message_id, ARGV[i + 2])
        redis.call("hset", held, ARGV[i], message_id)
        redis.call("rpush", ranges, ARGV[i + 1])
    end
end

-- Whether a message of `job` waits in, or was fetched from, the queue or its delay queue.
-- Reads every message body: the queue is short by design (the backlog holds the rest),
-- the delay queue holds only retries and hand-backs, and this runs only for jobs without
-- progress for the stall threshold, each at most once per threshold.
local function has_message(job)
    local needle = '"job":"' .. job .. '"'
    for _, messages in ipairs({queue_messages, namespace .. ":" .. queue_name .. ".DQ.msgs"}) do
        local bodies = redis.call("hvals", messages)
        for i = 1, #bodies do
            if string.find(bodies[i], needle, 1, true) then
                return true
            end
        end
    end
    return false
end

local function has_work(job)
    if redis.call("exists", ranges_of(job)) == 1 then
        return true
    end
    -- Redis's clock, as in the script that records the grants (stop_flags.py).
    local t = redis.call("time")
    local redis_now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if redis.call("zcount", namespace .. ":job-calls:" .. job, "(" .. redis_now_ms, "+inf") > 0 then
        return true
    end
    return has_message(job)
end

if command == "enqueue" then
    enqueue(ARGV[8], ARGV[9])
    return dispatch()
elseif command == "recover" then
    if has_work(ARGV[9]) then
        return -1
    end
    enqueue(ARGV[8], ARGV[9])
    return dispatch()
elseif command == "dispatch" then
    return dispatch()
elseif command == "drop" then
    local project, job = ARGV[8], ARGV[9]
    local jobs = jobs_of(project)
    local dropped = forget_ranges(job)
    local job_member = member_named(jobs, job)
    if job_member then
        redis.call("zrem", jobs, job_member)
    end
    if redis.call("exists", jobs) == 0 then
        local project_member = member_named(projects, project)
        if project_member then
            redis.call("zrem", projects, project_member)
        end
    end
    return dropped
end
return redis.error_reply("unknown backlog command " .. tostring(command))
