-- The lead of each part that must run in one hub at a time, as an epoch: a hub that takes a
-- part's advisory lock bumps its epoch (postgres/leader.rs). A led part's writes check, in their
-- own transaction, that the epoch is still the one their hub took, holding the row (FOR SHARE):
-- a former leader that was paused past the loss of its lead has its write refused, and a new
-- leader's bump waits until a write begun under the old epoch has ended.
CREATE TABLE leads (
    part  TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL
);
