"""Inbox -> jobs: the walk that never follows a link, watching and settling, inspecting, rules, recording."""
