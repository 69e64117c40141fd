"""Events: what happened, announced exactly as it committed (a transactional outbox).

Every finished job and every change of a stock level is written as an event row in the same
transaction as the change (`outbox.append`, called last by the apply path), so nothing is
announced that did not commit and nothing that committed goes unannounced. Each event gets a
`position` from one counter, `event_sequence`, whose row the transaction locks just before it
commits: positions are handed out in commit order with no gaps, so a reader that asks for the
events after the last position it saw (`feed`) can never skip one that commits later with a
smaller number (the classic trap of auto-increment ids, which are assigned at insert).

The webhooks (shared/webhooks/) follow the same feed.
"""
