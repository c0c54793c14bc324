"""The MCP server for chat assistants (Claude Desktop, IDEs): investigate incidents, metrics and
the cluster with read-only tools, and, when settings.mcp.enable_write_tools is on, propose,
approve and reject remediations through the incident workflows.

    aiops mcp --transport stdio            # Claude Desktop / IDEs: the local user decides
    aiops mcp --transport http --port 8765 # streamable HTTP at /mcp, bearer tokens

Modules: server (composition: lifespan with the backends, middleware), read tools by backend
(tools_incidents: Temporal; tools_metrics: Prometheus; tools_cluster: Kubernetes; tools_rules:
playbooks and policy) returning the typed models of `models` (their output schemas), common
(what the read tools share), tools_write, auth (tokens -> people -> roles), resources
(incident://ID, playbooks://all, playbook://ID), prompts, incidents (reading a workflow and its
history), audit, views, guard (PromQL limits), redaction (every answer), errors.
"""
