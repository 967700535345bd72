"""Face-verify use cases; no FastAPI imports. ``verification``: submit a pair (decoded first: bad input
leaves no job and no blob) and the job that detects, checks the pose, embeds and compares; ``jobs``: the
handlers and the process's models."""
