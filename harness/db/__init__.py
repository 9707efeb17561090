"""Database disaster recovery (prod; staging with `--components db`): PostgreSQL with
continuous WAL archiving and scheduled base backups to an S3 store in "region A",
replicated to a second store in "region B", the database password and the S3 keys
delivered from Vault by ESO.

- `credentials`: the two ExternalSecrets and reading what ESO delivers;
- `postgres`: running the server as a non-root user, and SQL;
- `tools`: the backup tool behind one small interface (pgBackRest here; WAL-G is the
  spec's tool, but its module is refused by the proxy here);
- `config`: the files rendered from the credentials (S3 identities, pgbackrest.conf),
  shared by the components and the backup agent that follows rotations.
"""
