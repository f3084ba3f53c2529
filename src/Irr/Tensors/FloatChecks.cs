using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Irr.Tensors;

/// <summary>Checks of float32 data.</summary>
public static class FloatChecks
{
    /// <summary>The index of the first NaN or ±∞ in <paramref name="values"/>, or −1 if all are finite.</summary>
    public static long FirstNonFinite(ReadOnlySpan<float> values)
    {
        // x − x is 0 for every finite x and NaN for NaN and ±∞.
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(values);
            for (; i + 8 <= values.Length; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref start, (nuint)i);
                if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero)) break;
            }
        }
        for (; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>An <see cref="IrrException"/> naming the tensor if it holds NaN or ±∞.</summary>
    public static void RequireFinite(ReadOnlySpan<float> values, string tensor, string where)
    {
        long i = FloatChecks.FirstNonFinite(values);
        if (i >= 0) throw new IrrException($"{where}: tensor '{tensor}' has a non-finite value ({values[(int)i]}) at element {i}");
    }
}
