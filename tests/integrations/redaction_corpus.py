# ruff: noqa: E501 - one corpus case per line reads better than wrapped strings
"""Real-world secret shapes as they show up in logs, events and error messages, and harmless text
that looks like them. Every secret here is made up (right shape, no real account behind it).

SECRETS: (name, text, the secret that must not survive). LOOKALIKES: text that must come out
unchanged (evidence a person needs: digests, ids, names, PromQL, prose about secrets)."""

from __future__ import annotations

A40 = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"
HEX64 = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa99"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

SECRETS: list[tuple[str, str, str]] = [
    # --- key/value in every spelling -------------------------------------------------------
    ("env password", "DB_PASSWORD=hunter2-Xy9", "hunter2-Xy9"),
    ("yaml password", "  password: s3cr3t!value", "s3cr3t!value"),
    ("json password", '{"user": "app", "password": "pa55w0rd"}', "pa55w0rd"),
    ("json-escaped", '{"msg": "{\\"password\\": \\"esc4ped-pw\\"}"}', "esc4ped-pw"),
    ("multi-word quoted", 'password="correct horse battery staple"', "correct horse battery"),
    ("single-quoted", "secret='tr0ub4dor&3'", "tr0ub4dor&3"),
    ("spaced equals", "api_key = 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a"),
    ("prose password", "login failed: the password is Winter2024!", "Winter2024!"),
    ("prose token", "your reset token was 88c1-4f0a-beef", "88c1-4f0a-beef"),
    ("client secret", "client_secret: 7Qx~Zp0.vv_Lk", "7Qx~Zp0.vv_Lk"),
    ("access key", "ACCESS_KEY=Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4"),
    ("private_key field", '"private_key": "MIIEvQIBADANBgkqhkiG9w0B"', "MIIEvQIBADANBgkqhkiG9w0B"),
    ("credentials", "credentials=admin:Sup3rS3cret", "Sup3rS3cret"),
    ("passphrase", "passphrase: blue-monkey-42", "blue-monkey-42"),
    ("pwd", "pwd=Qw3rty!", "Qw3rty!"),
    # --- command lines ---------------------------------------------------------------------
    ("flag space", "exec: mysql --password s3cret-flag -h db", "s3cret-flag"),
    ("flag equals", "exec: app --db-password=Fl4g=Eq", "Fl4g=Eq"),
    ("flag token", "kubectl --token eyJ0b2tlbiI6dHJ1ZX0x get pods", "eyJ0b2tlbiI6dHJ1ZX0x"),
    ("flag api-key", "curl-wrapper --api-key 12345abcde67890", "12345abcde67890"),
    # --- headers ---------------------------------------------------------------------------
    ("bearer header", "Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
    ("short bearer", "Authorization: Bearer t0k3n", "t0k3n"),
    ("token scheme", "Authorization: Token 4c0ffee4c0ffee", "4c0ffee4c0ffee"),
    ("basic header", "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("inline bearer", "request failed (bearer Zk9xY2JhcjEy) 401", "Zk9xY2JhcjEy"),
    ("cookie", "Cookie: session=9a8b7c6d; csrftoken=abc123", "9a8b7c6d"),
    ("set-cookie", "Set-Cookie: sid=QmFzZTY0U2Vzc2lvbg; HttpOnly", "QmFzZTY0U2Vzc2lvbg"),
    ("x-api-key", "X-Api-Key: 0a1b2c3d4e5f6a7b", "0a1b2c3d4e5f6a7b"),
    ("x-auth-token", "x-auth-token: zz99yy88xx77", "zz99yy88xx77"),
    ("json authorization", '{"Authorization": "Bearer jsonb3arer"}', "jsonb3arer"),
    # --- URLs ------------------------------------------------------------------------------
    ("url creds", "connecting to postgres://app:pgpass123@db:5432/shop", "pgpass123"),
    ("url creds with @", "redis://default:p@ss@redis-cart:6379/0", "p@ss"),
    ("url query token", "GET /callback?code=1&access_token=qwe123rty456 HTTP/1.1", "qwe123rty456"),
    ("url-encoded", "body=user%3Dbob%26password%3Dp%40ssw0rd%21", "p%40ssw0rd"),
    ("url-encoded json", "q=%7B%22password%22%3A%22encJs0n%22%7D", "encJs0n"),
    (
        "sas signature",
        "https://acct.blob.core.windows.net/c/b?sv=2022&sig=Zm9vJTJCYmFy",
        "Zm9vJTJCYmFy",
    ),
    # --- private keys ----------------------------------------------------------------------
    (
        "rsa key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq\nkeybody\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA7bq",
    ),
    (
        "cut-off key",
        "config: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
        "b3BlbnNzaC1rZXktdjEAAAAA",
    ),
    (
        "json-escaped key",
        '{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n-----END PRIVATE KEY-----"}',
        "MIIEvQIBADAN",
    ),
    # --- token shapes (detect-secrets and ours) --------------------------------------------
    ("aws access key id", "using AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret", f'aws_secret_access_key = "{A40}"', A40),
    ("github classic", "cloning with ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "ghp_0123"),
    ("github oauth", "gho_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "gho_ABCD"),
    ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11"),
    ("gitlab", "glpat-xYz0123456789AbCdEfGh", "glpat-xYz0"),
    ("slack bot", "posting with xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "xoxb-1234"),
    ("slack user", "xoxp-123456789012-123456789012-123456789012-abcdef0123", "xoxp-1234"),
    ("slack app", "app token xapp-1-A0123456789-1234567890123-abcdef", "xapp-1-A01"),
    (
        "slack webhook",
        "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXX",
        "XXXXXXXX",
    ),
    ("google api key", "maps key AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-12"),
    ("google oauth", "ya29.a0AfH6SMBx-EXAMPLE-token-value_0123", "ya29.a0AfH6"),
    ("openai", "OPENAI sk-proj-abcdefghijklmnopqrstuvwx0123456789", "sk-proj-abcd"),
    ("anthropic", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "sk-ant-api03"),
    ("stripe live", "charging with sk_live_0123456789abcdefghijklmn", "sk_live_0123"),
    ("stripe test", "rk_test_0123456789abcdefghijkl", "rk_test_0123"),
    (
        "sendgrid",
        "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "SG.abcd",
    ),
    ("twilio", "sid AC0123456789abcdef0123456789abcdef", "AC0123456789abcdef"),
    (
        "npm",
        "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "npm_abcd",
    ),
    ("jwt", f"token in header: {JWT}", "SflKxwRJSMeKKF2QT4fw"),
    ("discord", "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0", "GaBcDe.abcdef"),
    ("telegram", "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq", "AAHdqTcvCH1vGWJx"),
    ("mailchimp", "mc key 0123456789abcdef0123456789abcdef-us21", "0123456789abcdef0123"),
    ("hugging face", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefgh"),
    ("vault", "VAULT_TOKEN hvs.CAESIabcdefghijklmnopqrstuvwxyz", "hvs.CAESI"),
    ("docker hub", "dckr_pat_abcdefghijklmnopqrstuvwx01", "dckr_pat_abcd"),
    ("digitalocean", f"dop_v1_{HEX64}", "dop_v1_4f3c"),
    ("azure storage", "AccountKey=" + "A" * 86 + "==;EndpointSuffix=core.windows.net", "AAAAAAAA"),
    ("age", "AGE-SECRET-KEY-1" + "QQ" * 29, "AGE-SECRET-KEY-1QQQ"),
]

LOOKALIKES: list[str] = [
    "Successfully pulled image gcr.io/google-samples/cartservice@sha256:" + HEX64,
    "rollout of ReplicaSet/boutique/cartservice-7d9c8b6f4 revision 2 (commit 3f2a9c1d8e7b6a5f)",
    "request_id=550e8400-e29b-41d4-a716-446655440000 status=200",
    "pod cartservice-7d9c8b6f4-x2k9p OOMKilled (exit code 137)",
    "llm usage: prompt_tokens=1532 completion_tokens=210 total_tokens=1742",
    "max_tokens=2000 temperature=0.2",
    "token_budget: 20000",
    "password_file=/run/secrets/db-password",
    "mysqld --password-file /run/secrets/mysql",
    "secretName: db-credentials",
    "secret_ref=vault/data/shop",
    "tokens_used: 42",
    "token_type=bearer expires_in=3600",
    "missing bearer token",
    "Authorization header missing",
    'WWW-Authenticate: Basic realm="aiops"',
    "authentication failed for user bob (status=401 Unauthorized)",
    "Set up the password reset flow",
    "The secret to good on-call is a quiet pager",
    "https://prometheus.monitoring:9090/api/v1/query?query=up&time=1700000000",
    "ssh://git@github.com/org/repo.git",
    "contact alice@example.com about the incident",
    "selector app.kubernetes.io/name=cartservice,tier=backend",
    'rate(istio_requests_total{response_code=~"5..", reporter="destination"}[1m])',
    'sum by (destination_workload) (rate(istio_request_duration_milliseconds_bucket{le="500"}[5m]))',
    "GET /api/v1/tokens HTTP/1.1 200",
    "Connected to redis-cart:6379",
    "Slack channel C0123456789 user U024BE7LH",
    "incident-3f2a9c8b7d6e5f40 plan b5e1d63fa02c2581",
    "disk-pressure on node-a; task-queue aiops",
    "memory_vs_limit went up from 0.41 to 0.93 (score 1.0)",
    "Back-off restarting failed container cartservice in pod cartservice-5f6d7",
    "Liveness probe failed: HTTP probe failed with statuscode: 503",
    "Scaled up replica set frontend-6b8f9 to 4",
    "node-a: NodeHasDiskPressure",
    "md5=0cc175b9c0f1b6a831c399e269772661",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "Error: key not found in map",
    "keyspace_hits=1000 keyspace_misses=3",
    "api version v1beta1 of the API is deprecated",
    "certificate expires 2027-01-01T00:00:00Z",
    "public key fingerprint SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    "-----BEGIN CERTIFICATE-----",
    "user=bob role=viewer",
    "Bearer tokens are checked in constant time",
    "skipped 3 of 10 checks",
    "the key is in the vault",
    "ConfigMap aiops-policies updated (policy 9c1e2f)",
    "kube-system/coredns 2/2 ready",
    "GOMAXPROCS=2 GOGC=100",
    "error_ratio of cartservice went up (score 1.0)",
]
