using System.Globalization;
using System.Text;

namespace Irr.Text;

/// <summary>The four Unicode normalization forms (UAX #15).</summary>
public enum NormalizationForm
{
    /// <summary>Canonical composition.</summary>
    NFC,
    /// <summary>Canonical decomposition.</summary>
    NFD,
    /// <summary>Compatibility composition.</summary>
    NFKC,
    /// <summary>Compatibility decomposition.</summary>
    NFKD,
}

/// <summary>
/// Unicode normalization (UAX #15) on our own tables, because <see cref="string.Normalize()"/> does
/// nothing under the invariant globalization mode this project runs in. The data
/// (<c>Unicode/normalization.txt</c>, made by <c>Unicode/generate.py</c>) holds combining classes, full
/// decompositions and primary composites; Hangul syllables are handled by algorithm.
/// </summary>
public static class UnicodeNormalizer
{
    private static readonly Lazy<Tables> Data = new(Tables.Load);

    /// <summary>Normalizes <paramref name="text"/> to <paramref name="form"/>.</summary>
    public static string Normalize(string text, NormalizationForm form)
    {
        // Text below U+0300 is already NFC (its quick check is "yes" for all of it); for the other forms
        // Latin-1 has mappings (À → A + ◌̀, NBSP → space, ² → 2 …), which start at U+00A0.
        char limit = form == NormalizationForm.NFC ? '\u0300' : '\u00A0';
        int i = 0;
        while (i < text.Length && text[i] < limit) i++;
        if (i == text.Length) return text;

        var t = Data.Value;
        bool compat = form is NormalizationForm.NFKC or NormalizationForm.NFKD;
        var cps = new List<int>(text.Length + 8);
        for (int k = 0; k < text.Length; k++)
        {
            int cp = text[k];
            if (char.IsHighSurrogate(text[k]) && k + 1 < text.Length && char.IsLowSurrogate(text[k + 1]))
                cp = char.ConvertToUtf32(text[k], text[++k]);
            t.Decompose(cp, compat, cps);
        }
        t.Reorder(cps);
        if (form is NormalizationForm.NFC or NormalizationForm.NFKC) t.Compose(cps);
        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    private sealed class Tables
    {
        private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
        private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

        private readonly Dictionary<int, byte> ccc = [];
        private readonly Dictionary<int, int[]> canonical = [];
        private readonly Dictionary<int, int[]> compatibility = [];
        private readonly Dictionary<long, int> composites = [];

        public static Tables Load()
        {
            var t = new Tables();
            using var stream = typeof(UnicodeNormalizer).Assembly.GetManifestResourceStream("Irr.Text.Unicode.normalization.txt")
                ?? throw new InvalidOperationException("The Unicode normalization data is missing from the assembly.");
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                if (line.Length == 0 || line[0] == '#') continue;
                var f = line.Split(' ');
                int cp = Hex(f[1]);
                switch (f[0])
                {
                    case "C": t.ccc[cp] = byte.Parse(f[2], CultureInfo.InvariantCulture); break;
                    case "D": t.canonical[cp] = f[2..].Select(Hex).ToArray(); break;
                    case "K": t.compatibility[cp] = f[2..].Select(Hex).ToArray(); break;
                    case "P": t.composites[Pair(cp, Hex(f[2]))] = Hex(f[3]); break;
                }
            }
            return t;
        }

        private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        private static long Pair(int a, int b) => ((long)a << 21) | (uint)b;

        private int Ccc(int cp) => cp < 0x300 ? 0 : ccc.GetValueOrDefault(cp);

        public void Decompose(int cp, bool compat, List<int> output)
        {
            if (cp is >= SBase and < SBase + SCount)
            {
                int s = cp - SBase;
                output.Add(LBase + s / NCount);
                output.Add(VBase + s % NCount / TCount);
                if (s % TCount != 0) output.Add(TBase + s % TCount);
                return;
            }
            if (compat && compatibility.TryGetValue(cp, out var k)) output.AddRange(k);
            else if (canonical.TryGetValue(cp, out var d)) output.AddRange(d);
            else output.Add(cp);
        }

        /// <summary>Canonical ordering: a stable sort by combining class of each run of non-starters.</summary>
        public void Reorder(List<int> cps)
        {
            for (int i = 1; i < cps.Count; i++)
            {
                int c = Ccc(cps[i]);
                if (c == 0) continue;
                int j = i;
                int cp = cps[i];
                while (j > 0 && Ccc(cps[j - 1]) > c)
                {
                    cps[j] = cps[j - 1];
                    j--;
                }
                cps[j] = cp;
            }
        }

        /// <summary>The canonical composition algorithm of UAX #15 §1.3, in place.</summary>
        public void Compose(List<int> cps)
        {
            if (cps.Count == 0) return;
            int starterPos = Ccc(cps[0]) == 0 ? 0 : -1;
            int lastClass = starterPos == 0 ? 0 : 256;
            int w = 1;
            for (int r = 1; r < cps.Count; r++)
            {
                int cp = cps[r];
                int cls = Ccc(cp);
                if (starterPos >= 0 && (lastClass < cls || lastClass == 0 && w == starterPos + 1)
                    && TryCompose(cps[starterPos], cp, out int composite))
                {
                    cps[starterPos] = composite;
                    continue;
                }
                if (cls == 0)
                {
                    starterPos = w;
                    lastClass = 0;
                }
                else lastClass = cls;
                cps[w++] = cp;
            }
            cps.RemoveRange(w, cps.Count - w);
        }

        private bool TryCompose(int a, int b, out int composite)
        {
            if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
            {
                composite = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
                return true;
            }
            if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
            {
                composite = a + (b - TBase);
                return true;
            }
            return composites.TryGetValue(Pair(a, b), out composite);
        }
    }
}
