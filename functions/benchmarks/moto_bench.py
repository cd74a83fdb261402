"""The serialized moto server of the tests (test-support/serial_moto.py), with one change
that makes big tables usable: how a transaction keeps its rollback copy.

moto 5.2.1's `transact_write_items` deep-copies the whole table once per action before
applying a transaction (99 copies of the table for a 98-write commit), so a commit costs
time and memory in proportion to the table's size times its actions: seeding 1,000
entries through the engine took 52 s, and memory passed 20 GB on the way to 10,000. This launcher instead keeps a
copy of only the items the transaction names, and puts them back if it is cancelled.
What the transaction does, its conditions and its cancellation reasons are moto's own.

Usage: python3 moto_bench.py HOST PORT
"""

import copy
import pathlib
import sys

from moto.dynamodb import models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "test-support"))
import serial_moto  # noqa: E402


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a table "copy" is
    the table itself (the items are backed up below), everything else is copied as usual."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table, op):
    raw = op.get("Key") or op.get("Item") or {}
    hash_key = raw.get(table.hash_key_attr)
    range_key = raw.get(table.range_key_attr) if table.range_key_attr else None
    if hash_key is None:
        return None
    return DynamoType(hash_key), (DynamoType(range_key) if range_key is not None else None)


def _get(table, hash_key, range_key):
    bucket = table.items.get(hash_key)
    if bucket is None:
        return None
    return bucket.get(range_key) if range_key is not None else bucket


def _restore(table, hash_key, range_key, item):
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def _patch():
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        backups = []
        for action in transact_items:
            for _, op in action.items():
                table = self.tables.get(op.get("TableName"))
                key = _key_of(table, op) if table is not None else None
                if key is not None:
                    backups.append((table, *key, copy.deepcopy(_get(table, *key))))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(backups):
                _restore(table, hash_key, range_key, item)
            raise

    models.copy = _NoTableCopy
    models.DynamoDBBackend.transact_write_items = transact_write_items


if __name__ == "__main__":
    _patch()
    serial_moto.main()
