-- One database per service: each service owns its schema and nobody else's.
-- Runs once, when the postgres volume is first initialised.
CREATE DATABASE users OWNER switchyard;
CREATE DATABASE orders OWNER switchyard;
