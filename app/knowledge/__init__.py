"""The bundled knowledge base, searched when a request brings no documents."""
