"""HTTP API of the service: request/response schemas, dependencies and one router per resource."""
