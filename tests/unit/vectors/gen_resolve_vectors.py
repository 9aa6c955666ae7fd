#!/usr/bin/env python3
"""Writes resolve_vectors.h: Avro records written by an independent
implementation (fastavro) with OLDER and NEWER versions of the project's
event schemas, for tests/unit/test_resolve.c, which decodes them with
partnerpulse's resolving decoder and checks every field.

Run it again after changing a case (the output is committed, so the unit tier
needs no Python):

    python3 tests/unit/vectors/gen_resolve_vectors.py > tests/unit/vectors/resolve_vectors.h
"""
import io
import json

import fastavro

NS = "dev.partnerpulse.events"

# Support v0: before csat_score and vendor_incident_id existed, and with the
# fields in another order (resolution is by name).
SUPPORT_V0 = {
    "type": "record", "name": "Support", "namespace": NS,
    "fields": [
        {"name": "ticket_id", "type": "string"},
        {"name": "event_id", "type": "string"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "customer_id", "type": "string"},
        {"name": "product_id", "type": ["null", "string"], "default": None},
        {"name": "event_type", "type": {"type": "enum", "name": "SupportEventType",
                                         "symbols": ["csat", "reopened", "resolved", "escalated", "opened"]}},
        {"name": "severity", "type": "int"},
    ],
}

# Deal v2: extra fields of every shape (skipped), extra enum symbols (the
# reader's enum default applies), promotions (float -> double, int -> long),
# term_months and currency dropped (the reader's defaults apply).
DEAL_V2 = {
    "type": "record", "name": "Deal", "namespace": NS,
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "occurred_at", "type": "long"},
        {"name": "deal_id", "type": "string"},
        {"name": "event_type", "type": {"type": "enum", "name": "DealEventType",
                                         "symbols": ["registered", "closed_won", "closed_lost", "amended",
                                                     "cancelled", "credited", "renegotiated"],
                                         "default": "registered"}},
        {"name": "partner_id", "type": "string"},
        {"name": "customer_id", "type": "string"},
        {"name": "product_id", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "DealKind",
                                   "symbols": ["new", "addon", "renewal", "commit", "trial"]}},
        {"name": "close_date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "seats", "type": "int"},
        {"name": "amount", "type": "int"},
        {"name": "list_amount", "type": ["null", "int"], "default": None},
        {"name": "discount_pct", "type": ["null", "float"], "default": None},
        {"name": "channel_notes", "type": "string", "default": ""},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "attrs", "type": {"type": "map", "values": ["null", "long", "string"]}, "default": {}},
        {"name": "rep", "type": ["null", {"type": "record", "name": "Rep", "fields": [
            {"name": "name", "type": "string"},
            {"name": "region", "type": {"type": "enum", "name": "Region", "symbols": ["EMEA", "AMER"]}},
            {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
            {"name": "score", "type": "double"},
            {"name": "active", "type": "boolean"},
            {"name": "raw", "type": "bytes"},
        ]}], "default": None},
        {"name": "quarter_end", "type": ["null", "boolean"], "default": None},
        {"name": "fiscal_quarter", "type": "string"},
    ],
}

# LicenseConsumption from another producer: bytes for a string (bytes ->
# string), long for a double (long -> double), a union for a required field,
# float consumption in a union.
LICENSE_ALT = {
    "type": "record", "name": "LicenseConsumption", "namespace": NS,
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "occurred_at", "type": "long"},
        {"name": "customer_id", "type": ["null", "string"]},
        {"name": "product_id", "type": "bytes"},
        {"name": "as_of", "type": "int"},
        {"name": "licenses_entitled", "type": "int"},
        {"name": "licenses_active", "type": "int"},
        {"name": "consumption_units", "type": ["null", "long", "float"]},
        {"name": "period_end", "type": ["null", "int"]},
    ],
}

# A Deal without `amount` (required, no default in the reader): the schemas
# do not resolve.
DEAL_NO_AMOUNT = {
    "type": "record", "name": "Deal", "namespace": NS,
    "fields": [f for f in DEAL_V2["fields"] if f["name"] != "amount"],
}
# A Deal whose seats are a string: the types do not resolve.
DEAL_STRING_SEATS = {
    "type": "record", "name": "Deal", "namespace": NS,
    "fields": [dict(f, type="string") if f["name"] == "seats" else f for f in DEAL_V2["fields"]],
}
# A record that is none of ours.
OTHER = {"type": "record", "name": "Thing", "namespace": "com.example",
         "fields": [{"name": "x", "type": "long"}]}

MS = 1751371200000  # 2025-07-01T12:00:00Z
DAY = 20270          # 2025-07-01

CASES = [
    # name, id, schema, record
    ("support_v0", 101, SUPPORT_V0, {
        "ticket_id": "T-1", "event_id": "E-s0", "occurred_at": MS, "customer_id": "C-1",
        "product_id": None, "event_type": "opened", "severity": 2}),
    ("support_v0_csat_symbol", 101, SUPPORT_V0, {
        "ticket_id": "T-2", "event_id": "E-s1", "occurred_at": MS, "customer_id": "C-1",
        "product_id": "ACME-SUITE", "event_type": "escalated", "severity": 1}),
    ("deal_v2", 102, DEAL_V2, {
        "event_id": "E-d2", "occurred_at": MS, "deal_id": "D-2", "event_type": "renegotiated",
        "partner_id": "P-1", "customer_id": "C-2", "product_id": "ACME-SUITE", "kind": "trial",
        "close_date": DAY, "seats": 40, "amount": 120000, "list_amount": 150000,
        "discount_pct": 0.25, "channel_notes": "x" * 300, "tags": ["a", "b", "c"],
        "attrs": {"k1": 7, "k2": None, "k3": "v"},
        "rep": {"name": "Ann", "region": "AMER", "hash": b"\x01\x02\x03\x04", "score": 1.5,
                "active": True, "raw": b"\x00\xff"},
        "quarter_end": True, "fiscal_quarter": "2025-Q3"}),
    ("deal_v2_known_symbols", 102, DEAL_V2, {
        "event_id": "E-d3", "occurred_at": MS, "deal_id": "D-3", "event_type": "closed_won",
        "partner_id": "P-1", "customer_id": "C-3", "product_id": "ACME-SUITE", "kind": "renewal",
        "close_date": DAY, "seats": 5, "amount": -100, "list_amount": None,
        "discount_pct": None, "channel_notes": "", "tags": [], "attrs": {}, "rep": None,
        "quarter_end": None, "fiscal_quarter": ""}),
    ("license_alt", 103, LICENSE_ALT, {
        "event_id": "E-l1", "occurred_at": MS, "customer_id": "C-4", "product_id": b"ACME-DATA",
        "as_of": DAY, "licenses_entitled": 50, "licenses_active": 42,
        "consumption_units": 12345, "period_end": DAY + 30}),
    ("license_alt_float", 103, LICENSE_ALT, {
        "event_id": "E-l2", "occurred_at": MS, "customer_id": "C-4", "product_id": b"ACME-DATA",
        "as_of": DAY, "licenses_entitled": 50, "licenses_active": 42,
        "consumption_units": 2.5, "period_end": None}),
    ("license_alt_null_customer", 103, LICENSE_ALT, {
        "event_id": "E-l3", "occurred_at": MS, "customer_id": None, "product_id": b"ACME-DATA",
        "as_of": DAY, "licenses_entitled": 50, "licenses_active": 42,
        "consumption_units": None, "period_end": None}),
    ("deal_no_amount", 104, DEAL_NO_AMOUNT, {
        "event_id": "E-d4", "occurred_at": MS, "deal_id": "D-4", "event_type": "closed_won",
        "partner_id": "P-1", "customer_id": "C-2", "product_id": "ACME-SUITE", "kind": "new",
        "close_date": DAY, "seats": 1, "list_amount": None, "discount_pct": None,
        "channel_notes": "", "tags": [], "attrs": {}, "rep": None, "quarter_end": None,
        "fiscal_quarter": ""}),
    ("deal_string_seats", 105, DEAL_STRING_SEATS, {
        "event_id": "E-d5", "occurred_at": MS, "deal_id": "D-5", "event_type": "closed_won",
        "partner_id": "P-1", "customer_id": "C-2", "product_id": "ACME-SUITE", "kind": "new",
        "close_date": DAY, "seats": "many", "amount": 1, "list_amount": None,
        "discount_pct": None, "channel_notes": "", "tags": [], "attrs": {}, "rep": None,
        "quarter_end": None, "fiscal_quarter": ""}),
    ("other_record", 106, OTHER, {"x": 1}),
]


def c_string(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid C string literal here (ASCII)


def main() -> None:
    out = ["/* Generated by tests/unit/vectors/gen_resolve_vectors.py with fastavro "
           f"{fastavro.__version__}. Do not edit. */",
           "#ifndef PP_RESOLVE_VECTORS_H", "#define PP_RESOLVE_VECTORS_H", "",
           "#include <stddef.h>", "#include <stdint.h>", "",
           "struct resolve_vector {", "    const char *name;", "    int32_t id;",
           "    const char *schema;", "    const unsigned char *body;", "    size_t len;", "};", ""]
    names = []
    for name, sid, schema, record in CASES:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
        body = buf.getvalue()
        out.append(f"static const unsigned char {name}_body[] = {{")
        for i in range(0, len(body), 16):
            out.append("    " + ", ".join(f"0x{b:02x}" for b in body[i:i + 16]) + ",")
        out.append("};")
        names.append((name, sid, json.dumps(schema, separators=(",", ":"))))
    out.append("")
    out.append("static const struct resolve_vector resolve_vectors[] = {")
    for name, sid, schema in names:
        out.append(f"    {{\"{name}\", {sid}, {c_string(schema)}, {name}_body, sizeof({name}_body)}},")
    out.append("};")
    out.append("")
    out.append("#endif")
    print("\n".join(out))


if __name__ == "__main__":
    main()
