using Irr.Tensors;

namespace Irr.Tests.Tensors;

/// <summary>
/// Exhaustive checks of the 16-bit conversions over all 65,536 bit patterns, against references
/// that decode bits with plain arithmetic and round by comparing distances in double precision —
/// nothing shared with the bit tricks under test.
/// </summary>
public class DTypesTests
{
    private static readonly ushort[] AllPatterns = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();

    // ---- independent decoders -------------------------------------------------------------

    // bfloat16: sign, 8-bit exponent (bias 127), 7-bit fraction; subnormals at exponent 0.
    private static double DecodeBf16(ushort b) => Decode(b, exponentBits: 8, fractionBits: 7);

    // binary16: sign, 5-bit exponent (bias 15), 10-bit fraction.
    private static double DecodeF16(ushort b) => Decode(b, exponentBits: 5, fractionBits: 10);

    private static double Decode(ushort b, int exponentBits, int fractionBits)
    {
        int sign = b >> 15, maxExp = (1 << exponentBits) - 1, bias = maxExp / 2;
        int exp = (b >> fractionBits) & maxExp, frac = b & ((1 << fractionBits) - 1);
        double magnitude = exp == maxExp
            ? (frac == 0 ? double.PositiveInfinity : double.NaN)
            : exp == 0
                ? frac * Math.Pow(2, 1 - bias - fractionBits)
                : (1 + frac / Math.Pow(2, fractionBits)) * Math.Pow(2, exp - bias);
        return sign == 1 ? -magnitude : magnitude;
    }

    // ---- independent rounding: nearest representable value, ties to the even pattern ------

    private sealed class Format(Func<ushort, double> decode, ushort maxFinite)
    {
        // Non-negative finite values in increasing order (pattern order is value order for sign 0),
        // plus the value where rounding to infinity starts to count: 2^(emax+1), one ulp past max.
        private readonly double[] values = Enumerable.Range(0, maxFinite + 1).Select(i => decode((ushort)i)).ToArray();
        private readonly double overflow = 2 * decode(maxFinite) - decode((ushort)(maxFinite - 1));

        public ushort Round(double x)
        {
            if (double.IsNaN(x)) throw new ArgumentException("NaN has no nearest value");
            ushort sign = (ushort)(x < 0 || (x == 0 && double.IsNegative(x)) ? 0x8000 : 0);
            double a = Math.Abs(x);
            int hi = Array.BinarySearch(values, a);
            if (hi >= 0) return (ushort)(sign | hi);
            hi = ~hi;                         // first value above a (or values.Length)
            int lo = hi - 1;
            double vHi = hi < values.Length ? values[hi] : overflow;
            double dLo = a - values[lo], dHi = vHi - a;
            int pick = dLo < dHi ? lo : dHi < dLo ? hi : (lo % 2 == 0 ? lo : hi);
            return (ushort)(sign | (pick < values.Length ? pick : values.Length)); // values.Length = +∞ pattern
        }
    }

    private static readonly Format Bf16 = new(DecodeBf16, 0x7F7F);
    private static readonly Format F16 = new(DecodeF16, 0x7BFF);

    // ---- bfloat16 ---------------------------------------------------------------------------

    [Fact]
    public void Bf16WideningIsExactForEveryPattern()
    {
        var dst = new float[65536];
        BFloat16.ToSingle(AllPatterns, dst);
        for (int i = 0; i < 65536; i++)
        {
            double expected = DecodeBf16((ushort)i);
            if (double.IsNaN(expected))
                Assert.True(float.IsNaN(dst[i]), $"0x{i:X4} should widen to NaN");
            else
                Assert.True(expected == dst[i] && double.IsNegative(expected) == float.IsNegative(dst[i]), $"0x{i:X4}: {dst[i]} != {expected}");
            Assert.Equal(BitConverter.SingleToUInt32Bits(dst[i]), BitConverter.SingleToUInt32Bits(BFloat16.ToSingle((ushort)i)));
        }
    }

    [Fact]
    public void Bf16NarrowingRoundsToNearestEvenAroundEveryPattern()
        => CheckNarrowingAroundEveryPattern(DecodeBf16, Bf16, BFloat16.FromSingle, expectedNaN: _ => BFloat16.NaN);

    [Fact]
    public void Bf16NarrowingMatchesTheReferenceOnRandomFloats()
        => CheckRandomFloats(Bf16, BFloat16.FromSingle, seed: 42);

    [Fact]
    public void Bf16SpecialValuesAsPyTorch()
    {
        // Values from torch.tensor([...], dtype=torch.float32).to(torch.bfloat16).view(torch.int16).
        Assert.Equal(0x3F80, BFloat16.FromSingle(1f));
        Assert.Equal(0x7F80, BFloat16.FromSingle(float.PositiveInfinity));
        Assert.Equal(0xFF80, BFloat16.FromSingle(float.NegativeInfinity));
        Assert.Equal(0x7F80, BFloat16.FromSingle(float.MaxValue));   // rounds up past the largest bf16
        Assert.Equal(0x7FC0, BFloat16.FromSingle(float.NaN));
        Assert.Equal(0x7FC0, BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(0xFFC00001))); // negative NaN too
        Assert.Equal(0x8000, BFloat16.FromSingle(-0f));
        Assert.Equal(0x3F80, BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even below
        Assert.Equal(0x3F82, BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, even above
    }

    // ---- float16 ----------------------------------------------------------------------------

    [Fact]
    public void F16WideningIsExactForEveryPattern()
    {
        var dst = new float[65536];
        Float16.ToSingle(AllPatterns, dst);
        for (int i = 0; i < 65536; i++)
        {
            double expected = DecodeF16((ushort)i);
            if (double.IsNaN(expected))
            {
                Assert.True(float.IsNaN(dst[i]), $"0x{i:X4} should widen to NaN");
                Assert.Equal(i >= 0x8000, float.IsNegative(dst[i]));
            }
            else
                Assert.True(expected == dst[i] && double.IsNegative(expected) == float.IsNegative(dst[i]), $"0x{i:X4}: {dst[i]} != {expected}");
        }
    }

    [Fact]
    public void F16NarrowingRoundsToNearestEvenAroundEveryPattern()
        => CheckNarrowingAroundEveryPattern(DecodeF16, F16, Float16.FromSingle, expectedNaN: null);

    [Fact]
    public void F16NarrowingMatchesTheReferenceOnRandomFloats()
        => CheckRandomFloats(F16, Float16.FromSingle, seed: 43);

    [Fact]
    public void F16OverflowAndUnderflow()
    {
        Assert.Equal(0x7BFF, Float16.FromSingle(65504f));
        Assert.Equal(0x7BFF, Float16.FromSingle(65519.99f));
        Assert.Equal(0x7C00, Float16.FromSingle(65520f));           // tie between 65504 (odd) and 2^16: even is ∞
        Assert.Equal(0xFC00, Float16.FromSingle(-1e6f));
        Assert.Equal(0x0001, Float16.FromSingle(MathF.Pow(2, -24)));  // smallest subnormal
        Assert.Equal(0x0000, Float16.FromSingle(MathF.Pow(2, -25)));  // tie with 0: even is 0
        Assert.Equal(0x0001, Float16.FromSingle(MathF.Pow(2, -25) * 1.0001f));
        Assert.Equal(0x8000, Float16.FromSingle(-1e-10f));
    }

    // ---- byte-level entry points ------------------------------------------------------------

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void ByteSpansRoundTripThroughEveryDType(DType type)
    {
        float[] values = [0f, 1f, -2.5f, 0.375f, 1024f, -0.0625f, 3f, 7.5f, 96f, -1f, 0.5f, 2f, 4f, 8f, 16f, 32f, 64f];
        var bytes = new byte[values.Length * type.SizeOf()];
        DTypes.FromSingle(type, values, bytes);
        var back = new float[values.Length];
        DTypes.ToSingle(type, bytes, back);
        Assert.Equal(values, back); // all exactly representable in every type
        // bf16 1.0 is 0x3F80: little-endian bytes 80 3F.
        if (type == DType.BF16) Assert.Equal(new byte[] { 0x80, 0x3F }, bytes[2..4]);
        Assert.Throws<ArgumentException>(() => DTypes.ToSingle(type, bytes.AsSpan(1), back));
    }

    // ---- shared checks ----------------------------------------------------------------------

    // For every pattern p: its own value, the midpoints to both neighbours, and the floats one ulp
    // either side of each midpoint (in float32) must round as the reference says.
    private static void CheckNarrowingAroundEveryPattern(Func<ushort, double> decode, Format format,
        SpanAction convert, Func<float, ushort>? expectedNaN)
    {
        var inputs = new List<float>(65536 * 7);
        foreach (ushort p in AllPatterns)
        {
            double v = decode(p);
            if (double.IsNaN(v)) { inputs.Add((float)v); continue; }
            inputs.Add((float)v);
            if (double.IsInfinity(v)) continue;
            ushort up = (ushort)(p + 1);      // next pattern away from zero (same sign)
            double next = (p & 0x7FFF) == (format == Bf16 ? 0x7F7F : 0x7BFF) ? double.CopySign(format == Bf16 ? Math.Pow(2, 128) : 65536, v) : decode(up);
            float mid = (float)((v + next) / 2);   // exact: float32 has the bits for it
            inputs.Add(mid);
            inputs.Add(MathF.BitIncrement(mid));
            inputs.Add(MathF.BitDecrement(mid));
        }
        var src = inputs.ToArray();
        var dst = new ushort[src.Length];
        convert(src, dst);
        for (int i = 0; i < src.Length; i++)
        {
            if (float.IsNaN(src[i]))
            {
                Assert.True(double.IsNaN(decode(dst[i])), $"NaN input became 0x{dst[i]:X4}");
                if (expectedNaN is not null) Assert.Equal(expectedNaN(src[i]), dst[i]);
                continue;
            }
            ushort expected = format.Round(src[i]);
            Assert.True(expected == dst[i], $"{src[i]:R} (0x{BitConverter.SingleToUInt32Bits(src[i]):X8}) -> 0x{dst[i]:X4}, expected 0x{expected:X4}");
        }
    }

    private static void CheckRandomFloats(Format format, SpanAction convert, int seed)
    {
        var rng = new Random(seed);
        var src = new float[1 << 20];
        for (int i = 0; i < src.Length; i++)
        {
            float f;
            do f = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)); while (float.IsNaN(f));
            src[i] = f;
        }
        var dst = new ushort[src.Length];
        convert(src, dst);
        for (int i = 0; i < src.Length; i++)
        {
            ushort expected = format.Round(src[i]);
            Assert.True(expected == dst[i], $"{src[i]:R} -> 0x{dst[i]:X4}, expected 0x{expected:X4}");
        }
    }

    private delegate void SpanAction(ReadOnlySpan<float> src, Span<ushort> dst);
}
