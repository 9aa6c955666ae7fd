package dev.partnerpulse.peer;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Confluent wire framing (magic byte 0, 4-byte big-endian schema id, Avro
 * binary body) read with Apache Avro's GenericDatumReader, resolving the
 * writer schema into partnerpulse's reader schemas (schemas/*.avsc, on the
 * classpath under /schemas). Confluent's serializers are not on Maven
 * Central, and the framing is five bytes: this is the whole of it.
 *
 * Writer schemas: without a registry, ids 1, 2, 3 are deal, licence
 * consumption and support (the local catalog of schemas/catalog.h, what
 * `partnerpulse generate` writes); with schema.registry.url set, any id is
 * fetched once with GET /schemas/ids/{id} and cached. As in partnerpulse,
 * the event type is the writer schema's full name, never the topic.
 *
 * Invalid records (bad framing, unknown schema, malformed Avro, or the
 * domain checks of schemas/codec.c validate()) decode to null and are
 * counted: the topology drops them where partnerpulse dead-letters them.
 */
public final class WireAvro {
    public static final String NS = "dev.partnerpulse.events.";
    private static final long MIN_EVENT_MS = PpTime.dayToMs((int) java.time.LocalDate.of(2000, 1, 1).toEpochDay());
    private static final long MAX_EVENT_MS = PpTime.dayToMs((int) java.time.LocalDate.of(2100, 1, 1).toEpochDay());
    private static final int ID_MAX = 63; /* PP_ID_MAX - 1 bytes */

    private final Schema[] readers = new Schema[4];
    private final Map<Integer, Entry> byId = new ConcurrentHashMap<>();
    private final String registryUrl;
    private final HttpClient http;
    public final java.util.concurrent.atomic.AtomicLong invalid = new java.util.concurrent.atomic.AtomicLong();

    private static final class Entry {
        final int type;
        final GenericDatumReader<GenericRecord> reader;

        Entry(int type, GenericDatumReader<GenericRecord> reader) {
            this.type = type;
            this.reader = reader;
        }
    }

    public WireAvro(String registryUrl) {
        this.registryUrl = registryUrl == null || registryUrl.isEmpty() ? null : registryUrl.replaceAll("/+$", "");
        this.http = this.registryUrl == null ? null : HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        readers[Event.DEAL] = load("deal.avsc");
        readers[Event.CONSUMPTION] = load("license_consumption.avsc");
        readers[Event.SUPPORT] = load("support.avsc");
        if (this.registryUrl == null) {
            for (int t = 1; t <= 3; t++) {
                byId.put(t, new Entry(t, new GenericDatumReader<>(readers[t], readers[t])));
            }
        }
    }

    private static Schema load(String name) {
        try (InputStream in = WireAvro.class.getResourceAsStream("/schemas/" + name)) {
            if (in == null) {
                throw new IllegalStateException("schema resource /schemas/" + name + " missing");
            }
            return new Schema.Parser().parse(in);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private Entry lookup(int id) {
        Entry e = byId.get(id);
        if (e != null || registryUrl == null) {
            return e;
        }
        try {
            HttpRequest req = HttpRequest.newBuilder(URI.create(registryUrl + "/schemas/ids/" + id))
                    .timeout(Duration.ofSeconds(2)).GET().build();
            HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() == 404) {
                return null;
            }
            if (resp.statusCode() != 200) {
                throw new IllegalStateException("registry: HTTP " + resp.statusCode() + " for id " + id);
            }
            JsonNode node = new ObjectMapper().readTree(resp.body());
            Schema writer = new Schema.Parser().parse(node.get("schema").asText());
            int type = typeOf(writer.getFullName());
            e = new Entry(type, type == 0 ? null : new GenericDatumReader<>(writer, readers[type]));
            byId.put(id, e);
            return e;
        } catch (IOException | InterruptedException ex) {
            throw new IllegalStateException("registry: " + ex.getMessage(), ex);
        }
    }

    static int typeOf(String fullName) {
        switch (fullName) {
        case NS + "Deal":
            return Event.DEAL;
        case NS + "LicenseConsumption":
            return Event.CONSUMPTION;
        case NS + "Support":
            return Event.SUPPORT;
        default:
            return 0;
        }
    }

    /** The event, or null when the record is not a valid event (counted in {@link #invalid}). */
    public Event decode(byte[] buf) {
        try {
            Event ev = decodeOrThrow(buf);
            if (ev == null) {
                invalid.incrementAndGet();
            }
            return ev;
        } catch (RuntimeException | IOException e) {
            invalid.incrementAndGet();
            return null;
        }
    }

    private Event decodeOrThrow(byte[] buf) throws IOException {
        if (buf == null || buf.length < 5 || buf[0] != 0 || buf.length > 1024 * 1024) {
            return null;
        }
        int id = ((buf[1] & 0xff) << 24) | ((buf[2] & 0xff) << 16) | ((buf[3] & 0xff) << 8) | (buf[4] & 0xff);
        Entry e = lookup(id);
        if (e == null || e.type == 0) {
            return null;
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(buf, 5, buf.length - 5, null);
        GenericRecord r = e.reader.read(null, dec);
        if (!dec.isEnd()) {
            return null; /* trailing bytes */
        }
        Event ev = new Event();
        ev.type = e.type;
        ev.schemaId = id;
        ev.eventId = id(r, "event_id", true);
        ev.occurredAtMs = (Long) r.get("occurred_at");
        switch (e.type) {
        case Event.DEAL:
            ev.dealId = id(r, "deal_id", true);
            ev.eventType = readers[Event.DEAL].getField("event_type").schema()
                    .getEnumOrdinal(r.get("event_type").toString());
            ev.partnerId = id(r, "partner_id", true);
            ev.customerId = id(r, "customer_id", true);
            ev.productId = id(r, "product_id", true);
            ev.kind = readers[Event.DEAL].getField("kind").schema().getEnumOrdinal(r.get("kind").toString());
            ev.closeDate = (Integer) r.get("close_date");
            Object sd = r.get("start_date");
            ev.hasStartDate = sd != null;
            ev.startDate = sd != null ? (Integer) sd : 0;
            ev.termMonths = (Integer) r.get("term_months");
            ev.seats = (Integer) r.get("seats");
            ev.amount = (Long) r.get("amount");
            Object la = r.get("list_amount");
            ev.hasListAmount = la != null;
            ev.listAmount = la != null ? (Long) la : 0;
            Object dp = r.get("discount_pct");
            ev.hasDiscountPct = dp != null;
            ev.discountPct = dp != null ? (Double) dp : 0.0;
            ev.currency = str(r, "currency", 3, true);
            Object cu = r.get("commit_units");
            ev.hasCommitUnits = cu != null;
            ev.commitUnits = cu != null ? (Long) cu : 0;
            Object qe = r.get("quarter_end");
            ev.hasQuarterEnd = qe != null;
            ev.quarterEnd = qe != null && (Boolean) qe;
            ev.fiscalQuarter = str(r, "fiscal_quarter", 15, false);
            break;
        case Event.CONSUMPTION:
            ev.customerId = id(r, "customer_id", true);
            ev.productId = id(r, "product_id", true);
            ev.asOf = (Integer) r.get("as_of");
            ev.licensesEntitled = (Integer) r.get("licenses_entitled");
            ev.licensesActive = (Integer) r.get("licenses_active");
            Object u = r.get("consumption_units");
            ev.hasConsumptionUnits = u != null;
            ev.consumptionUnits = u != null ? (Double) u : 0.0;
            break;
        default:
            ev.ticketId = id(r, "ticket_id", true);
            ev.customerId = id(r, "customer_id", true);
            Object p = r.get("product_id");
            ev.productId = p == null ? null : str(r, "product_id", ID_MAX, false);
            ev.eventType = readers[Event.SUPPORT].getField("event_type").schema()
                    .getEnumOrdinal(r.get("event_type").toString());
            ev.severity = (Integer) r.get("severity");
            Object cs = r.get("csat_score");
            ev.hasCsatScore = cs != null;
            ev.csatScore = cs != null ? (Integer) cs : 0;
            Object vi = r.get("vendor_incident_id");
            ev.hasVendorIncidentId = vi != null;
            if (vi != null) {
                str(r, "vendor_incident_id", ID_MAX, false);
            }
            break;
        }
        return valid(ev) ? ev : null;
    }

    private static final class Invalid extends RuntimeException {
        Invalid(String m) {
            super(m, null, false, false);
        }
    }

    private static String str(GenericRecord r, String field, int max, boolean required) {
        String s = r.get(field).toString();
        int n = s.getBytes(StandardCharsets.UTF_8).length;
        if (n > max || (required && n == 0)) {
            throw new Invalid(field);
        }
        return s;
    }

    private static String id(GenericRecord r, String field, boolean required) {
        return str(r, field, ID_MAX, required);
    }

    /** schemas/codec.c validate(): what the model cannot sensibly count. */
    static boolean valid(Event ev) {
        if (ev.occurredAtMs < MIN_EVENT_MS || ev.occurredAtMs > MAX_EVENT_MS) {
            return false;
        }
        switch (ev.type) {
        case Event.DEAL:
            if (ev.termMonths < 1 || ev.termMonths > 600) {
                return false;
            }
            if (ev.seats < 0 && ev.eventType != Event.AMENDED) {
                return false;
            }
            if (ev.hasDiscountPct && !(ev.discountPct >= 0.0 && ev.discountPct < 1.0)) {
                return false;
            }
            return !(ev.hasListAmount && ev.listAmount < 0);
        case Event.CONSUMPTION:
            if (ev.licensesEntitled < 0 || ev.licensesActive < 0) {
                return false;
            }
            return !(ev.hasConsumptionUnits && !(Double.isFinite(ev.consumptionUnits) && ev.consumptionUnits >= 0));
        default:
            if (ev.severity < 1 || ev.severity > 4) {
                return false;
            }
            if (ev.hasCsatScore && (ev.csatScore < 1 || ev.csatScore > 5)) {
                return false;
            }
            return !(ev.eventType == Event.CSAT && !ev.hasCsatScore);
        }
    }

    /**
     * Serde of the repartition topic: the ORIGINAL value bytes go on (as
     * partnerpulse's source tasks forward them) and are decoded again by the
     * customers task.
     */
    public Deserializer<Event> deserializer(boolean ticks) {
        return (topic, data) -> {
            if (ticks && Event.isTick(data)) {
                return Event.readTick(data);
            }
            Event ev = decode(data);
            if (ev != null) {
                ev.raw = data;
            }
            return ev;
        };
    }

    public static Serializer<Event> serializer() {
        return (topic, ev) -> ev == null ? null : ev.raw;
    }
}
