"""Shared reads: answers kept once and served to every reader, forgotten exactly when what they show changes.

``create_app`` builds one :class:`~service.shared_reads.reads.SharedReads`
and hands it to the two layers that use it, as it hands them the database:
the thin middleware ``middleware.shared_hits`` looks a URL up and answers an
anonymous hit; the dispatcher personalises a hit for a signed-in reader and
keeps what it answered on a miss; the unit of work (``service.unit_of_work``)
has it forget what a write changed (recorded in the transaction, bumped after the commit), for the
API's writes and the admin's commands alike.

**What.** The ``200`` answer to a ``GET`` of a route that declares ``cache=``
in the route table, as an anonymous reader gets it, keyed by the path and the
query as the view reads it (``urls``: werkzeug's own parsing; the first value
of each parameter the route's query schema reads, sorted by name: ``?utm=1``
and ``?utm=2`` share one entry, so unread parameters cannot multiply one
answer into a flood of entries). A ``HEAD`` is answered from the cache but
never stores. An answer is stored once this process has missed its URL
``min_uses`` times.

**For whom.** Anyone. An anonymous reader gets the entry as it is. A
signed-in reader's request goes on to the dispatcher with the lookup in hand
(``environ_keys.SHARED_LOOKUP``, data only); the dispatcher checks the token
and reads the viewer's ``favorited``/``following`` flags with one small
statement, and writes them in at the places the entry records (``shown``).
A signed-in miss is stored with the flags cleared.

**What forgets it.** Every entry records the surrogate keys of what it shows
(``surrogates``): those its route declares for its URL (a list's filters, an
article's slug) and those of the articles and profiles in its data (``shown``,
the same walk that finds the flags). A write's ops record the keys of what
they changed; the unit of work hands them over and they are *bumped* before
the response leaves. Nothing else is forgotten: a login, a follow or a
comment on another article leaves an entry alone.

**Why an entry is never stale.** The store holds a write counter (``seq``)
and, per surrogate key, the counter's value when it was last bumped. A reader
reads ``seq`` (with its lookup, before it computes anything) and stores its
answer as made at that ``seq``; an entry is served only while none of its keys
has been bumped past it. A write bumps after its commit, so any reader that
might have read the database before the commit read ``seq`` before the bump
too, and its entry is dead on arrival; a reader that started after the bump
saw the write. Counter and keys change in one atomic step of the store (a
Lua script on Redis, a transaction on SQLite), so two writers cannot leave a
key behind. A key missing from the store (evicted, or never stored) is no
version: an entry depending on it is dead, and a reader that stores a new
entry recreates the key at the counter's value *when it stores* (Redis and
SQLite; past every bump so far, so an entry computed across a write whose
version was evicted meanwhile is dead on arrival too; other caches use the
value it read). A lost counter is started again from the clock in
microseconds, past any value it had (writes never come a million a second).

How each store applies that rule (``store.VersionedStore``, the contract), in
one lookup per hit: Redis keeps an entry's version names beside it and a Lua
script returns the entry only if none moved past it; the host-local SQLite
store turns it around, each bump deleting the entries that show what it
bumps, and an entry computed across a bump refused when it is stored (both
are transactions, so one waits for the other). Any other cachelib cache
(``simple``, in tests) reads the versions with a second lookup.

**A cache that fails.** Reads bypass it for a few seconds. Writes never wait
for it. A cache shared by hosts (Redis) is told through the database: a write
records the version names it bumps in the journal (``queries.journal``), in
its own transaction, and bumps the cache after its commit if it can; every
process serving from that cache delivers the journal rows the cache missed
beside its requests (``delivery``), and serves from the cache only while its
last delivery began less than ``delivery.BOUND`` (1 s) ago on the server it is
connected to. So no answer served misses a write committed more than a second
before, whether the cache was down for everyone, cut from some hosts, or came
back with older data (a restart from a snapshot, a promoted replica), and a
bump never needs a Redis that keeps its data. A host-local cache has no
journal: only that host's workers read it, and a bump it misses after a commit
is owed (``owed``): its keys are appended to a file of the host (the instance
folder), and no worker of the host reads the cache again until they have been
bumped.

The package imports the surrogate keys, the JSON encoding, the metrics and
the cachelib contract; never a request, the router's matching or the database.
"""
