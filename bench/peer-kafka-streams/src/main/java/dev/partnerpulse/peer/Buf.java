package dev.partnerpulse.peer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A growable big-endian byte buffer with unsigned and zig-zag varints, for
 * the peer's own state serialisation (store values and changelogs).
 */
final class Buf {
    private byte[] a;
    private int n;

    Buf(int cap) {
        a = new byte[Math.max(16, cap)];
    }

    private void room(int k) {
        if (n + k > a.length) {
            a = Arrays.copyOf(a, Math.max(a.length * 2, n + k));
        }
    }

    void u8(int v) {
        room(1);
        a[n++] = (byte) v;
    }

    void vlong(long v) {
        room(10);
        while ((v & ~0x7FL) != 0) {
            a[n++] = (byte) ((v & 0x7F) | 0x80);
            v >>>= 7;
        }
        a[n++] = (byte) v;
    }

    void vint(int v) {
        vlong(v & 0xFFFFFFFFL);
    }

    void zint(int v) {
        vlong(((long) v << 1) ^ ((long) v >> 63));
    }

    void i64(long v) {
        room(8);
        for (int i = 7; i >= 0; i--) {
            a[n++] = (byte) (v >>> (i * 8));
        }
    }

    void i32(int v) {
        room(4);
        for (int i = 3; i >= 0; i--) {
            a[n++] = (byte) (v >>> (i * 8));
        }
    }

    void f64(double v) {
        i64(Double.doubleToRawLongBits(v));
    }

    void f32(float v) {
        i32(Float.floatToRawIntBits(v));
    }

    /** null -> 0, else length + 1 then the UTF-8 bytes. */
    void str(String s) {
        if (s == null) {
            vint(0);
            return;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        vint(b.length + 1);
        room(b.length);
        System.arraycopy(b, 0, a, n, b.length);
        n += b.length;
    }

    byte[] bytes() {
        return Arrays.copyOf(a, n);
    }

    static long vlong(ByteBuffer in) {
        long v = 0;
        int shift = 0;
        while (true) {
            byte b = in.get();
            v |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return v;
            }
            shift += 7;
            if (shift > 63) {
                throw new IllegalStateException("varint too long");
            }
        }
    }

    static int vint(ByteBuffer in) {
        return (int) vlong(in);
    }

    static int zint(ByteBuffer in) {
        long z = vlong(in);
        return (int) ((z >>> 1) ^ -(z & 1));
    }

    static String str(ByteBuffer in) {
        int len = vint(in);
        if (len == 0) {
            return null;
        }
        byte[] b = new byte[len - 1];
        in.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
