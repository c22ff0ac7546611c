"""Seed 002's three statements, the one copy for the tests that run them.

Copied from /work/shared/seeds/002_*.txt with only the table and column names adapted
(``tw_users`` -> ``users``, ``tw_tweets`` -> ``posts``, ``tw_tweet_hashtags.tweet_id`` ->
``post_hashtags.post_id``, ``user_id`` -> ``author_id``).
"""

from __future__ import annotations

__all__ = ["SEED_STATS", "SEED_TOP_USERS", "SEED_TRENDING"]

SEED_TOP_USERS = """
SELECT username, follower_count, verified
FROM users
ORDER BY follower_count DESC
LIMIT $1
"""
SEED_TRENDING = """
SELECT h.tag, COUNT(*) AS tweet_count
FROM hashtags h
JOIN post_hashtags th ON th.hashtag_id = h.id
JOIN posts t ON t.id = th.post_id
WHERE t.created_at >= NOW() - ($1 || ' days')::INTERVAL
GROUP BY h.tag
ORDER BY tweet_count DESC
LIMIT 10
"""
SEED_STATS = """
SELECT
COUNT(*) AS total_tweets,
COUNT(DISTINCT author_id) AS active_users,
SUM(like_count) AS total_likes,
AVG(like_count) AS avg_likes
FROM posts
WHERE created_at >= NOW() - INTERVAL '7 days'
"""
