using System.Globalization;
using System.Text.Json;
using Irr.Tensors;

namespace Irr.Tests.Tensors;

/// <summary>
/// The conversions against PyTorch itself: tests/fixtures/torch/dtype_reference.json holds 8,192
/// float32 patterns (specials, bf16 and fp16 ties and near-ties, random) with the bits
/// <c>Tensor.to(torch.bfloat16)</c> and <c>.to(torch.float16)</c> give (script beside it).
/// </summary>
public class TorchDTypeReferenceTests
{
    private static (uint[] F32, ushort[] Bf16, ushort[] F16) Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Text.Fixtures.Local("torch/dtype_reference.json")));
        T[] Hex<T>(string key, Func<string, T> parse) => doc.RootElement.GetProperty(key).EnumerateArray().Select(e => parse(e.GetString()!)).ToArray();
        return (Hex("f32", s => uint.Parse(s, NumberStyles.HexNumber)), Hex("bf16", s => ushort.Parse(s, NumberStyles.HexNumber)), Hex("f16", s => ushort.Parse(s, NumberStyles.HexNumber)));
    }

    [Fact]
    public void NarrowingMatchesPyTorchBitForBit()
    {
        var (bits, bf16, f16) = Load();
        Assert.Equal(8192, bits.Length);
        var src = bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var ourBf16 = new ushort[src.Length];
        var ourF16 = new ushort[src.Length];
        BFloat16.FromSingle(src, ourBf16);
        Float16.FromSingle(src, ourF16);
        int nans = 0;
        for (int i = 0; i < src.Length; i++)
        {
            if (float.IsNaN(src[i]))
            {
                // PyTorch's own NaN bits differ between its scalar path (0x7FC0) and its AVX path
                // (0xFFFF, which produced this file); both are NaN, and so must ours be.
                nans++;
                Assert.True(float.IsNaN(BFloat16.ToSingle(ourBf16[i])) && float.IsNaN(BFloat16.ToSingle(bf16[i])));
                Assert.True(float.IsNaN(Float16.ToSingle(ourF16[i])) && float.IsNaN(Float16.ToSingle(f16[i])));
                continue;
            }
            Assert.True(bf16[i] == ourBf16[i], $"f32 0x{bits[i]:X8} -> bf16 0x{ourBf16[i]:X4}, PyTorch 0x{bf16[i]:X4}");
            Assert.True(f16[i] == ourF16[i], $"f32 0x{bits[i]:X8} -> f16 0x{ourF16[i]:X4}, PyTorch 0x{f16[i]:X4}");
        }
        Assert.True(nans >= 5, "the fixture should include NaNs");
    }
}
