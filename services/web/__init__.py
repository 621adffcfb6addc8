"""The review web app: a browser front end for annotation teams and admins.

A gRPC client of the gateway like the CLI: every page is one or a few public API calls
made with the signed-in user's own token. It holds no data; the session (token, CSRF
secret, the projects opened) lives in an encrypted cookie."""
