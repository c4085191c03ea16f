"""The service's database: feedback and the answer log, written off the request's hot path."""
