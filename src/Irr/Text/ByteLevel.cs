using System.Text;

namespace Irr.Text;

/// <summary>
/// GPT-2's byte-to-character alphabet (<c>bytes_to_unicode</c>): the 188 printable Latin-1 bytes stand
/// for themselves, the other 68 bytes for U+0100 onwards, in byte order. Byte-level BPE vocabularies
/// (GPT-2, Llama-3, Qwen2) are written in it, e.g. "Ġ" (U+0120) is the space byte.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly short[] CharToByte = Inverse();

    private static char[] Build()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    private static short[] Inverse()
    {
        var inv = new short[512];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each written as its alphabet character.</summary>
    public static string Encode(string text)
    {
        if (System.Text.Ascii.IsValid(text))
            return string.Create(text.Length, text, static (dst, src) =>
            {
                for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
            });
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(text, bytes);
        Span<char> chars = n <= 1024 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars[..n]);
    }

    /// <summary>The byte a character stands for, or -1 when it is not in the alphabet.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;
}
