-- The client certificates an API client is bound to (RFC 8705): with any row here, the client
-- gets a token only over mutual TLS with one of these certificates, and the token is bound to
-- it. `thumbprint` is the SHA-256 of the certificate's DER, base64url without padding
-- (x5t#S256). A client without rows works as before. Expand-only: older releases ignore it.
CREATE TABLE api_client_certificates (
    client_id   TEXT   NOT NULL REFERENCES api_clients (id),
    thumbprint  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, thumbprint)
);
