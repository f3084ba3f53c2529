using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Irr.Tensors;

/// <summary>Storage types of Hugging Face checkpoints that IRR reads and writes (safetensors names).</summary>
public enum DType
{
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary16 (<c>torch.float16</c>).</summary>
    F16,
    /// <summary>bfloat16 (<c>torch.bfloat16</c>): the top 16 bits of a binary32.</summary>
    BF16,
}

/// <summary>Bulk conversion between storage types and float32, on little-endian byte spans as stored in safetensors.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this DType type) => type == DType.F32 ? 4 : 2;

    /// <summary>Decodes <paramref name="src"/> (elements of <paramref name="type"/>) into float32; lengths must agree.</summary>
    public static void ToSingle(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLengths(type, src.Length, dst.Length);
        switch (type)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.F16: Float16.ToSingle(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            default: BFloat16.ToSingle(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
        }
    }

    /// <summary>Encodes float32 into <paramref name="dst"/> (elements of <paramref name="type"/>), rounding to nearest even; lengths must agree.</summary>
    public static void FromSingle(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckLengths(type, dst.Length, src.Length);
        switch (type)
        {
            case DType.F32: src.CopyTo(MemoryMarshal.Cast<byte, float>(dst)); break;
            case DType.F16: Float16.FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            default: BFloat16.FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
        }
    }

    private static void CheckLengths(DType type, int bytes, int floats)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Tensor data is little-endian; big-endian hosts are not supported.");
        if (bytes != (long)floats * type.SizeOf())
            throw new ArgumentException($"{bytes} bytes of {type} do not hold {floats} elements ({type.SizeOf()} bytes each).");
    }
}

/// <summary>
/// bfloat16 ↔ float32. Widening is exact (shift left by 16). Narrowing rounds to nearest, ties to
/// even, exactly as PyTorch's <c>c10::BFloat16</c>: finite values past the largest bfloat16 become
/// ±∞, infinities stay infinite, and every NaN becomes the quiet NaN 0x7FC0.
/// </summary>
public static class BFloat16
{
    /// <summary>The NaN PyTorch produces for any NaN input.</summary>
    public const ushort NaN = 0x7FC0;

    /// <summary>One value, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>One value, rounded to nearest even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        if (float.IsNaN(value)) return NaN;
        uint u = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>Widens <paramref name="src"/> into <paramref name="dst"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("Source and destination lengths differ.", nameof(dst));
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= src.Length; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < src.Length; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>Rounds <paramref name="src"/> into <paramref name="dst"/> (same length), to nearest even.</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("Source and destination lengths differ.", nameof(dst));
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= src.Length; i += 16)
            {
                var lo = Round(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = Round(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < src.Length; i++) Unsafe.Add(ref d, i) = FromSingle(Unsafe.Add(ref s, i));
    }

    // (u + 0x7FFF + lsb) >> 16 per lane, NaN lanes replaced by 0x7FC0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Round(Vector256<float> x)
    {
        var u = x.AsUInt32();
        var rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        var isNaN = ~Vector256.Equals(x, x).AsUInt32();
        return Vector256.ConditionalSelect(isNaN, Vector256.Create((uint)NaN), rounded);
    }
}

/// <summary>
/// IEEE binary16 ↔ float32 through <see cref="TensorPrimitives"/> (vectorised): widening is exact;
/// narrowing rounds to nearest, ties to even, with overflow to ±∞, gradual underflow to subnormals,
/// and NaN kept NaN (sign and top payload bits kept, quieted).
/// </summary>
public static class Float16
{
    /// <summary>One value, widened.</summary>
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>One value, rounded to nearest even.</summary>
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Widens <paramref name="src"/> (raw binary16 bits) into <paramref name="dst"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("Source and destination lengths differ.", nameof(dst));
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
    }

    /// <summary>Rounds <paramref name="src"/> into <paramref name="dst"/> (raw binary16 bits, same length), to nearest even.</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("Source and destination lengths differ.", nameof(dst));
        TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<ushort, Half>(dst));
    }
}
