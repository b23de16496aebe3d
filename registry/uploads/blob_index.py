"""The database's index of published blobs: one ``blobs`` row per content-addressed object that
rows may refer to, and its queries.

The store (``registry.storage``) holds the bytes and knows no database; this index is what
links them to rows. The upload service inserts a row in the transaction that first references
the bytes, after they were written and verified (blob first, row second); catalog rows point
at it by foreign key (``blobs.digest``); ``storage gc`` asks it which stored objects are still
referenced and deletes the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.db.base import Base, CreatedAtMixin
from registry.db.upsert import insert_ignore


class Blob(CreatedAtMixin, Base):
    """A content-addressed object in the artifact store, keyed by its sha256 (hex).

    The row is inserted in the transaction that first references the bytes, after the bytes
    were written and verified; ``storage gc`` deletes stored objects that have no row.
    """

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class BlobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, blobs: Iterable[tuple[str, int]]) -> None:
        """Record blobs (hex digest, size); already-known digests are left alone."""
        rows = [{"digest": d, "size": s} for d, s in dict(blobs).items()]
        insert_ignore(self.session, Blob, rows, index_elements=["digest"])

    def existing(self, digests: list[str]) -> set[str]:
        if not digests:
            return set()
        stmt = select(Blob.digest).where(Blob.digest.in_(digests))
        return set(self.session.scalars(stmt))
