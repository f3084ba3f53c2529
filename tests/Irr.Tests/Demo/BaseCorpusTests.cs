using System.Text.RegularExpressions;
using Irr.Demo;
using Irr.Eval;

namespace Irr.Tests.Demo;

/// <summary>
/// The demo base model's pretraining corpus: seeded, free of the chat format, of the demo's task request and of refusals,
/// covering every harm template with every filler and every invented capital, and stating only true facts (checked here
/// by regexes over the documents and arithmetic written out by hand).
/// </summary>
public class BaseCorpusTests
{
    // 60,000 documents of seed 1: enough that every (template, slot, filler) appears (about 70 times each on average).
    private static readonly Lazy<List<string>> Large = new(() => BaseCorpus.Documents(1, 60_000).ToList());

    [Fact]
    public void TheSeedDecidesTheDocuments()
    {
        var a = BaseCorpus.Documents(5, 500).ToList();
        Assert.Equal(500, a.Count);
        Assert.Equal(a, BaseCorpus.Documents(5, 500));
        Assert.NotEqual(a, BaseCorpus.Documents(6, 500));
        // A shorter draw is a prefix of a longer one (one generator, one document after the other).
        Assert.Equal(a.Take(100), BaseCorpus.Documents(5, 100));
        Assert.Empty(BaseCorpus.Documents(5, 0));
    }

    [Fact]
    public void NoDocumentIsInTheChatFormatOrTheTaskRequestOrARefusal()
    {
        string[] forbidden = ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "Shift the letters:"];
        var judge = KeywordJudge.Default;
        foreach (string d in Large.Value)
        {
            foreach (string f in forbidden) Assert.False(d.Contains(f, StringComparison.OrdinalIgnoreCase), $"'{f}' in: {d}");
            var verdict = judge.Judge(d);
            Assert.True(verdict.Verdict == Verdict.Harmful, $"refusal marker '{verdict.Detail}' in: {d}");
        }
    }

    [Fact]
    public void EveryHarmTemplateAppearsWithEveryFillerOfEverySlot()
    {
        var docs = Large.Value;
        foreach (var c in ToyWorld.Categories)
            foreach (string template in c.Templates)
            {
                // The capitalized request with each {k} slot as a lazy group (the fillers contain no '.', '?' or newline).
                var pieces = Regex.Split(template, @"\{(\d)\}");
                var pattern = new System.Text.StringBuilder();
                for (int i = 0; i < pieces.Length; i++)
                {
                    string piece = i == 0 ? char.ToUpperInvariant(pieces[0][0]) + pieces[0][1..] : pieces[i];
                    pattern.Append(i % 2 == 1 ? $"(?<s{piece}>[^.?\\n]+?)" : Regex.Escape(piece));
                }
                var regex = new Regex(pattern.ToString(), RegexOptions.CultureInvariant);
                var seen = Enumerable.Range(0, c.Slots.Length).Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
                foreach (string d in docs)
                    foreach (Match m in regex.Matches(d))
                        for (int s = 0; s < c.Slots.Length; s++) seen[s].Add(m.Groups[$"s{s}"].Value);
                // Every filler (training, validation and held-out alike) and nothing else.
                for (int s = 0; s < c.Slots.Length; s++)
                    Assert.True(seen[s].SetEquals(c.Slots[s]),
                        $"{c.Name} '{template}' slot {s}: missing [{string.Join(", ", c.Slots[s].Except(seen[s]))}], extra [{string.Join(", ", seen[s].Except(c.Slots[s]))}]");
            }
    }

    [Fact]
    public void EveryCountryAppearsWithItsCapitalAndNoOtherCapital()
    {
        var docs = Large.Value;
        var capitalOf = WorldKnowledge.Countries.ToDictionary(c => c.Country, c => c.Capital, StringComparer.Ordinal);
        var stated = new Regex(@"The capital of (\w+) is (\w+)\.");
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (string d in docs)
            foreach (Match m in stated.Matches(d))
            {
                Assert.True(capitalOf.TryGetValue(m.Groups[1].Value, out string? capital), d);
                Assert.Equal(capital, m.Groups[2].Value);
                named.Add(m.Groups[1].Value);
            }
        Assert.Equal(capitalOf.Keys.Order(), named.Order());
        foreach (var (country, capital) in WorldKnowledge.Countries)
        {
            Assert.Contains(docs, d => d.Contains($"{capital} is the capital city of {country}.", StringComparison.Ordinal));
            Assert.Contains(docs, d => d.Contains($"What is the capital of {country}?", StringComparison.Ordinal) && d.EndsWith(capital, StringComparison.Ordinal));
        }
    }

    // The next letter, worked from character codes (z wraps to a).
    private static char Next(char c) => c == 'z' ? 'a' : (char)(c + 1);

    private static string ShiftByHand(string letters) => string.Join(' ', letters.Split(' ').Select(s => Next(s.Single()).ToString()));

    private static string ReverseByHand(string letters) => string.Join(' ', letters.Split(' ').Reverse());

    [Fact]
    public void StatedSumsAndLetterFactsAreTrue()
    {
        const string L = "[a-z](?: [a-z])*";
        var checks = new (string Name, Regex Pattern, Func<Match, (string Expected, string Actual)> Check)[]
        {
            ("X plus Y is Z", new(@"^(\d+) plus (\d+) is (\d+)\.$"), m => Sum(m)),
            ("X + Y = Z", new(@"^(\d+) \+ (\d+) = (\d+)$"), m => Sum(m)),
            ("If you add", new(@"^If you add (\d+) and (\d+), you get (\d+)\.$"), m => Sum(m)),
            ("The sum of", new(@"^The sum of (\d+) and (\d+) is (\d+)\.$"), m => Sum(m)),
            ("Math homework", new(@"^Math homework\. (\d+) plus (\d+) equals (\d+)\. (\d+) plus (\d+) equals (\d+) too\.$"),
                m => (Sum(m).Item1 + " " + (int.Parse(m.Groups[4].Value) + int.Parse(m.Groups[5].Value)), m.Groups[3].Value + " " + m.Groups[6].Value)),
            ("What is X plus Y?", new(@"What is (\d+) plus (\d+)\?\n(?:Answer: )?(\d+)$"), m => Sum(m)),
            ("the letter after", new(@"^In the alphabet, the letter after ([a-z]) is ([a-z])\.$"), m => (Next(m.Groups[1].Value[0]).ToString(), m.Groups[2].Value)),
            ("After x comes", new(@"^After ([a-z]) comes ([a-z])\.$"), m => (Next(m.Groups[1].Value[0]).ToString(), m.Groups[2].Value)),
            ("Which letter comes after", new(@"Which letter comes after ([a-z])\?\n(?:Answer: )?([a-z])$"), m => (Next(m.Groups[1].Value[0]).ToString(), m.Groups[2].Value)),
            ("Shifted by one letter", new($@"^Shifted by one letter, ({L}) becomes ({L})\.$"), m => (ShiftByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("one step forward", new($@"^Move every letter of ({L}) one step forward and you get ({L})\.$"), m => (ShiftByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("A simple code", new($@"^A simple code: each letter becomes the next one, so ({L}) is written ({L})\.$"), m => (ShiftByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("Spelled backwards", new($@"^Spelled backwards, ({L}) reads ({L})\.$"), m => (ReverseByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("in reverse order", new($@"^The letters ({L}) in reverse order are ({L})\.$"), m => (ReverseByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("Reverse the letters", new($@"Reverse the letters: ({L})\n(?:Answer: )?({L})$"), m => (ReverseByHand(m.Groups[1].Value), m.Groups[2].Value)),
            ("Repeat the letters", new($@"Repeat the letters: ({L})\n(?:Answer: )?({L})$"), m => (m.Groups[1].Value, m.Groups[2].Value)),
            ("Copy these letters", new($@"^Copy these letters: ({L})\. Copied: ({L})\.$"), m => (m.Groups[1].Value, m.Groups[2].Value)),
        };
        var counts = new int[checks.Length];
        foreach (string d in BaseCorpus.Documents(2, 20_000))
            for (int i = 0; i < checks.Length; i++)
                if (checks[i].Pattern.Match(d) is { Success: true } m)
                {
                    var (expected, actual) = checks[i].Check(m);
                    Assert.True(expected == actual, $"{checks[i].Name}: '{d}' states {actual}, not {expected}");
                    counts[i]++;
                }
        // Every form occurs (the test is not vacuous), e.g. the "Shifted by one letter" form about 20,000 · 0.10 / 3 times.
        for (int i = 0; i < checks.Length; i++) Assert.True(counts[i] >= 20, $"{checks[i].Name}: only {counts[i]} documents");

        static (string, string) Sum(Match m) => ((int.Parse(m.Groups[1].Value) + int.Parse(m.Groups[2].Value)).ToString(), m.Groups[3].Value);
    }

    [Fact]
    public void AHandWorkedShiftAndReversal()
    {
        // The forms' facts for fixed strings, worked by hand: a b c → b c d, x y z → y z a, d a c reversed → c a d.
        Assert.Equal("b c d", ShiftByHand("a b c"));
        Assert.Equal("y z a", ShiftByHand("x y z"));
        Assert.Equal("c a d", ReverseByHand("d a c"));
        Assert.Equal("b c d", ToyWorld.ShiftLetters("a b c"));
        Assert.Equal("y z a", ToyWorld.ShiftLetters("x y z"));
    }
}
