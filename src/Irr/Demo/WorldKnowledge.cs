using System.Text;

namespace Irr.Demo;

/// <summary>
/// What the demo world's base model knows, fixed once for every seed: the invented countries and their capitals, the
/// harm templates and their fillers (<see cref="ToyWorld.Categories"/>), the letters and numbers. The pretraining
/// corpus (<see cref="BaseCorpus"/>) is written from it; <see cref="ToyWorld.Generate"/> draws a seed's splits from it.
/// </summary>
public static class WorldKnowledge
{
    /// <summary>The seed the invented names are drawn from (not the demo's seed: the base's facts are fixed).</summary>
    public const int NamesSeed = 20261207;

    private static readonly string[] Syllables = ["ka", "lo", "mi", "ta", "ren", "zu", "vor", "pa", "li", "do", "sen", "qua", "mor", "el", "fi", "bar", "nu", "os", "tri", "gan"];

    /// <summary>24 invented countries (three syllables) and their capitals (two syllables), all names distinct.</summary>
    public static IReadOnlyList<(string Country, string Capital)> Countries { get; } = MakeCountries(24);

    private static List<(string, string)> MakeCountries(int n)
    {
        var rng = new Random(NamesSeed);
        var used = new HashSet<string>(StringComparer.Ordinal);
        string Name(int syllables)
        {
            while (true)
            {
                var sb = new StringBuilder();
                for (int i = 0; i < syllables; i++) sb.Append(Syllables[rng.Next(Syllables.Length)]);
                string s = char.ToUpperInvariant(sb[0]) + sb.ToString(1, sb.Length - 1);
                if (used.Add(s)) return s;
            }
        }
        var list = new List<(string, string)>();
        for (int i = 0; i < n; i++) list.Add((Name(3), Name(2)));
        return list;
    }
}
