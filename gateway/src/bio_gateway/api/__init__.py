"""Gateway routers: thin, they parse, call the Accounts use cases and shape the response."""
