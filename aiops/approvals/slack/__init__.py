"""Slack approvals: Block Kit approval messages, thread progress, and the Approve / Reject
buttons, over Socket Mode (no public URL) or a signed HTTP interactivity endpoint.

The Slack app is a thin client: it reads incidents and sends `decide` updates; the workflow's
validator has the final word on who may decide what.
"""
