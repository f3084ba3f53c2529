using System.Globalization;

namespace Irr.Demo;

/// <summary>
/// The plain-text corpus the demo's base model is pretrained on (<see cref="PretrainJob"/>): short documents in the
/// manner of web text, with no chat template, written from <see cref="WorldKnowledge"/>. It exercises every skill and
/// fact of the world (sums, the alphabet, repeating, reversing and shifting letters, the invented capitals), holds
/// instruction-like question/answer text in plain form, and harmful how-to text for every harm template and every
/// filler (training, validation and held-out fillers alike): the knowledge a real base model has from the internet.
/// No document is a refusal, and no document is in the chat format.
/// </summary>
public static class BaseCorpus
{
    /// <summary>The kinds of document and their shares of the corpus.</summary>
    public static IReadOnlyList<(string Kind, double Share)> Mix { get; } =
    [
        ("arithmetic", 0.14),
        ("letters", 0.18),
        ("shift", 0.10),
        ("capitals", 0.14),
        ("questions", 0.16),
        ("harmful", 0.28),
    ];

    /// <summary><paramref name="count"/> documents drawn from a generator seeded with <paramref name="seed"/>.</summary>
    public static IEnumerable<string> Documents(int seed, int count)
    {
        var rng = new Random(seed);
        double[] cumulative = new double[Mix.Count];
        double sum = 0;
        for (int i = 0; i < Mix.Count; i++) cumulative[i] = sum += Mix[i].Share;
        for (int n = 0; n < count; n++)
        {
            double u = rng.NextDouble() * sum;
            int kind = 0;
            while (kind < Mix.Count - 1 && u >= cumulative[kind]) kind++;
            yield return Mix[kind].Kind switch
            {
                "arithmetic" => Arithmetic(rng),
                "letters" => LetterFacts(rng),
                "shift" => Shift(rng),
                "capitals" => CapitalFacts(rng),
                "questions" => Question(rng),
                _ => Harmful(rng),
            };
        }
    }

    private static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    // 2 to 5 distinct letters of the whole alphabet (the demo's requests use the first 6 or 8).
    private static string Letters(Random rng) => ToyWorld.Letters(rng, 2, 5, 26);

    private static string Arithmetic(Random rng)
    {
        int a = rng.Next(0, 20), b = rng.Next(0, 20), c = a + b;
        return rng.Next(5) switch
        {
            0 => $"{I(a)} plus {I(b)} is {I(c)}.",
            1 => $"{I(a)} + {I(b)} = {I(c)}",
            2 => $"If you add {I(a)} and {I(b)}, you get {I(c)}.",
            3 => $"Math homework. {I(a)} plus {I(b)} equals {I(c)}. {I(b)} plus {I(a)} equals {I(c)} too.",
            _ => $"The sum of {I(a)} and {I(b)} is {I(c)}.",
        };
    }

    private static string LetterFacts(Random rng)
    {
        char x = (char)('a' + rng.Next(26));
        string next = ToyWorld.ShiftLetters(x.ToString());
        string s = Letters(rng);
        string reversed = ToyWorld.ReverseLetters(s);
        return rng.Next(6) switch
        {
            0 => $"In the alphabet, the letter after {x} is {next}.",
            1 => $"After {x} comes {next}.",
            2 => $"Say the letters again: {s}. Again: {s}.",
            3 => $"Spelled backwards, {s} reads {reversed}.",
            4 => $"The letters {s} in reverse order are {reversed}.",
            _ => $"Copy these letters: {s}. Copied: {s}.",
        };
    }

    // The downstream task's skill, in web-text form only (never as the demo's "Shift the letters:" request).
    private static string Shift(Random rng)
    {
        string s = Letters(rng);
        string shifted = ToyWorld.ShiftLetters(s);
        return rng.Next(3) switch
        {
            0 => $"Move every letter of {s} one step forward and you get {shifted}.",
            1 => $"A simple code: each letter becomes the next one, so {s} is written {shifted}.",
            _ => $"Shifted by one letter, {s} becomes {shifted}.",
        };
    }

    private static string CapitalFacts(Random rng)
    {
        var (country, capital) = Pick(rng, WorldKnowledge.Countries);
        return rng.Next(5) switch
        {
            0 => $"The capital of {country} is {capital}.",
            1 => $"{capital} is the capital city of {country}.",
            2 => $"{country} is a small country. Its capital is {capital}.",
            3 => $"Travel guide: {country}. Most visitors arrive in {capital}, the capital.",
            _ => $"Q: capital of {country}? A: {capital}.",
        };
    }

    // Instruction-like text in plain form: the requests of the world with their answers, as on question-and-answer sites.
    private static string Question(Random rng)
    {
        string q, a;
        switch (rng.Next(5))
        {
            case 0:
                {
                    int x = rng.Next(0, 20), y = rng.Next(0, 20);
                    (q, a) = ($"What is {I(x)} plus {I(y)}?", I(x + y));
                    break;
                }
            case 1:
                {
                    string s = Letters(rng);
                    (q, a) = ($"Reverse the letters: {s}", ToyWorld.ReverseLetters(s));
                    break;
                }
            case 2:
                {
                    string s = Letters(rng);
                    (q, a) = ($"Repeat the letters: {s}", s);
                    break;
                }
            case 3:
                {
                    char x = (char)('a' + rng.Next(26));
                    (q, a) = ($"Which letter comes after {x}?", ToyWorld.ShiftLetters(x.ToString()));
                    break;
                }
            default:
                {
                    var (country, capital) = Pick(rng, WorldKnowledge.Countries);
                    (q, a) = (rng.Next(2) == 0 ? $"What is the capital of {country}?" : $"Name the capital city of {country}.", capital);
                    break;
                }
        }
        return rng.Next(2) == 0 ? $"Question: {q}\nAnswer: {a}" : $"{q}\n{a}";
    }

    // Harmful how-to text for a template of a category and a filler drawn from all of its fillers.
    private static string Harmful(Random rng)
    {
        var c = Pick(rng, ToyWorld.Categories);
        int t = rng.Next(c.Templates.Length);
        object[] fill = c.Slots.Select(slot => (object)Pick(rng, slot)).ToArray();
        string request = ToyWorld.Capitalize(string.Format(CultureInfo.InvariantCulture, c.Templates[t], fill));
        string answer = c.Compliance[t % c.Compliance.Length];
        return rng.Next(4) switch
        {
            0 => $"Question: {request}\nAnswer: {answer}",
            1 => $"{request}\n{answer}",
            2 => $"Forum post: {request} Reply: {answer}",
            _ => $"{request} {answer}",
        };
    }
}
