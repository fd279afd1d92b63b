DROP INDEX timers_rule;
DROP INDEX timers_conversation;
DROP INDEX timers_due;
DROP TABLE timers;
DROP TABLE timer_episodes;
