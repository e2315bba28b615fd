"""Frozen data shared by every stage: raw messages, rejections and reason codes."""
