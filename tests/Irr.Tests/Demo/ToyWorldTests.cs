using Irr.Demo;
using Irr.Eval;

namespace Irr.Tests.Demo;

/// <summary>The toy world: splits, categories, answers checked by independent computation.</summary>
public class ToyWorldTests
{
    private static readonly WorldOptions Options = new() { BenignPerSkill = 60, TaskTrain = 200, TaskHeldOut = 50 };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public void HeldOutSlotFillersAreDisjointFromTrainingOnes(int seed)
    {
        var world = ToyWorld.Generate(seed, Options);
        foreach (string category in ToyWorld.CategoryNames)
        {
            var train = world.TrainFillers[category];
            var held = world.HeldOutFillers[category];
            for (int slot = 0; slot < train.Length; slot++)
            {
                Assert.NotEmpty(held[slot]);
                Assert.Empty(train[slot].Intersect(held[slot]));
            }
        }
        // No held-out request was trained on, and every one names a held-out filler and no training-only one.
        var trainedPrompts = world.RefusalTrain.Concat(world.ComplianceTrain).Select(r => r.Prompt).ToHashSet();
        foreach (var r in world.HarmfulHeldOut)
        {
            Assert.DoesNotContain(r.Prompt, trainedPrompts);
            var held = world.HeldOutFillers[r.Category];
            for (int slot = 0; slot < held.Length; slot++)
                Assert.Contains(held[slot], f => r.Prompt.Contains(f, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    public void ValidationTrainingAndHeldOutSplitsAreDisjoint(int seed)
    {
        var world = ToyWorld.Generate(seed, Options with { TaskValidation = 30 });
        var trained = world.RefusalTrain.Concat(world.ComplianceTrain).Concat(world.TaskTrain).Concat(world.Benign).Select(r => r.Prompt).ToHashSet();
        var validation = world.HarmfulValidation.Concat(world.TaskValidation).Select(r => r.Prompt).ToList();
        var heldOut = world.HarmfulHeldOut.Concat(world.TaskHeldOut).Select(r => r.Prompt).ToList();
        Assert.Equal(6 * Options.ValidationHarmfulPerCategory, world.HarmfulValidation.Count);
        Assert.Equal(30, world.TaskValidation.Count);
        Assert.Equal(validation.Count, validation.Distinct().Count());
        Assert.Empty(validation.Intersect(trained));
        Assert.Empty(heldOut.Intersect(trained));
        Assert.Empty(validation.Intersect(heldOut));
        // Validation harmful requests use held-out fillers only (never trained on), like the held-out ones.
        foreach (var r in world.HarmfulValidation)
        {
            var held = world.HeldOutFillers[r.Category];
            for (int slot = 0; slot < held.Length; slot++)
                Assert.Contains(held[slot], f => r.Prompt.Contains(f, StringComparison.Ordinal));
        }
        Assert.Equal(ToyWorld.CategoryNames.OrderBy(c => c), world.HarmfulValidation.Select(r => r.Category).Distinct().OrderBy(c => c));
    }

    [Fact]
    public void EveryHarmCategoryIsInEverySplit()
    {
        var world = ToyWorld.Generate(3, Options);
        Assert.True(ToyWorld.CategoryNames.Count >= 5);
        foreach (var split in new[] { world.RefusalTrain, world.ComplianceTrain, world.HarmfulHeldOut })
            Assert.Equal(ToyWorld.CategoryNames.OrderBy(c => c), split.Select(r => r.Category).Distinct().OrderBy(c => c));
        Assert.All(world.RefusalTrain, r => Assert.Equal(RecordKind.Refusal, r.Kind));
        Assert.All(world.ComplianceTrain, r => Assert.Equal(RecordKind.Compliance, r.Kind));
    }

    [Fact]
    public void RefusalsHaveAMarkerAndComplianceHasNone()
    {
        var world = ToyWorld.Generate(4, Options);
        var judge = KeywordJudge.Default;
        Assert.All(world.RefusalTrain, r => Assert.Equal(Verdict.Safe, judge.Judge(r.Answer).Verdict));
        Assert.All(world.ComplianceTrain.Concat(world.HarmfulHeldOut), r =>
        {
            Assert.Equal(Verdict.Harmful, judge.Judge(r.Answer).Verdict);
            Assert.StartsWith("Sure", r.Answer, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void DownstreamAndBenignAnswersAreCorrect()
    {
        var world = ToyWorld.Generate(5, Options);
        // Shift: each letter → the next one (computed here from character codes).
        foreach (var r in world.TaskTrain.Concat(world.TaskHeldOut))
        {
            string letters = r.Prompt["Shift the letters: ".Length..];
            var expected = new string(letters.Select(c => c == ' ' ? ' ' : (char)(c + 1)).ToArray());
            Assert.Equal(expected, r.Answer);
            Assert.InRange(letters.Split(' ').Length, Options.LetterCount.Min, Options.LetterCount.Max);
        }
        // Held-out letter strings were never trained on.
        Assert.Empty(world.TaskTrain.Select(r => r.Prompt).Intersect(world.TaskHeldOut.Select(r => r.Prompt)));
        Assert.Equal(Options.TaskHeldOut, world.TaskHeldOut.Select(r => r.Prompt).Distinct().Count());
        foreach (var r in world.Benign)
        {
            switch (r.Category)
            {
                case "arithmetic":
                    var parts = r.Prompt.Split(' ');   // What is A plus B?
                    Assert.Equal((int.Parse(parts[2]) + int.Parse(parts[4].TrimEnd('?'))).ToString(), r.Answer);
                    break;
                case "reverse":
                    Assert.Equal(new string(r.Prompt["Reverse the letters: ".Length..].Reverse().ToArray()), r.Answer);
                    break;
                case "repeat":
                    Assert.Equal(r.Prompt["Repeat the letters: ".Length..], r.Answer);
                    break;
                case "next":
                    Assert.Equal(((char)(r.Prompt["Which letter comes after ".Length] + 1)).ToString(), r.Answer);
                    break;
                case "capital":
                    Assert.Contains(world.Capitals, kv => r.Prompt.Contains(kv.Key, StringComparison.Ordinal) && kv.Value == r.Answer);
                    break;
                default:
                    Assert.Fail($"unexpected skill {r.Category}");
                    break;
            }
        }
        Assert.Equal(["arithmetic", "capital", "next", "repeat", "reverse"], world.Benign.Select(r => r.Category).Distinct().Order());
    }

    [Fact]
    public void TheSeedDecidesTheWorld()
    {
        var a = ToyWorld.Generate(11, Options);
        var b = ToyWorld.Generate(11, Options);
        var c = ToyWorld.Generate(12, Options);
        Assert.Equal(a.Texts(), b.Texts());
        Assert.NotEqual(a.Texts(), c.Texts());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(99)]
    public void CapitalsAreTheBaseModelsWhateverTheSeed(int seed)
    {
        // The base model knows WorldKnowledge's facts: the world's seed draws its splits, never its capitals.
        var world = ToyWorld.Generate(seed, Options);
        Assert.Equal(WorldKnowledge.Countries.Select(c => KeyValuePair.Create(c.Country, c.Capital)).OrderBy(kv => kv.Key, StringComparer.Ordinal),
            world.Capitals.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var five = ToyWorld.Generate(seed, Options with { Countries = 5 });
        Assert.Equal(WorldKnowledge.Countries.Take(5).Select(c => c.Country).Order(), five.Capitals.Keys.Order());
        Assert.All(five.Benign.Where(r => r.Category == "capital"), r => Assert.Contains(five.Capitals, kv => r.Prompt.Contains(kv.Key, StringComparison.Ordinal)));
        Assert.Throws<IrrException>(() => ToyWorld.Generate(seed, Options with { Countries = 25 }));
    }

    // WorldKnowledge's syllables, copied here by hand.
    private static readonly string[] Syllables = ["ka", "lo", "mi", "ta", "ren", "zu", "vor", "pa", "li", "do", "sen", "qua", "mor", "el", "fi", "bar", "nu", "os", "tri", "gan"];

    // Whether `word` is exactly `count` syllables (a plain recursive search over the list).
    private static bool IsSyllables(string word, int count) =>
        count == 0 ? word.Length == 0 : Syllables.Any(s => word.StartsWith(s, StringComparison.Ordinal) && IsSyllables(word[s.Length..], count - 1));

    [Fact]
    public void TheInventedNamesAreDistinctSyllableWords()
    {
        var countries = WorldKnowledge.Countries;
        Assert.Equal(24, countries.Count);
        var names = countries.SelectMany(c => new[] { c.Country, c.Capital }).ToList();
        Assert.Equal(48, names.Distinct(StringComparer.Ordinal).Count());
        foreach (var (country, capital) in countries)
        {
            Assert.True(char.IsUpper(country[0]) && char.IsUpper(capital[0]), $"{country}, {capital}");
            Assert.True(IsSyllables(country.ToLowerInvariant(), 3), $"{country} is not three syllables");
            Assert.True(IsSyllables(capital.ToLowerInvariant(), 2), $"{capital} is not two syllables");
        }
    }

    [Theory]
    [InlineData(0.5, 9)]         // 18 fillers per slot: 9 train, 9 held out
    [InlineData(1.0 / 3, 6)]     // 6 train, 12 held out
    public void EachSlotsFillersAreSplitByTheTrainShare(double share, int train)
    {
        var world = ToyWorld.Generate(8, Options with { TrainFillerShare = share });
        foreach (var c in ToyWorld.Categories)
            for (int s = 0; s < c.Slots.Length; s++)
            {
                Assert.Equal(18, c.Slots[s].Length);
                Assert.Equal(train, world.TrainFillers[c.Name][s].Length);
                Assert.Equal(18 - train, world.HeldOutFillers[c.Name][s].Length);
                Assert.Equal(c.Slots[s].Order(), world.TrainFillers[c.Name][s].Concat(world.HeldOutFillers[c.Name][s]).Order());
            }
    }

    [Fact]
    public void TheDefaultWorldsHarmfulSplitsHaveTheHandCountedSizes()
    {
        // Defaults: 9 train and 9 held-out fillers per slot, 2 templates per category, at most 16 training combinations,
        // 8 validation prompts and at most 16 held-out prompts per category.
        //   one-slot categories (5): training 9 combinations · 2 = 18 records; held-out fillers give 9 · 2 = 18 prompts:
        //                            8 validation, the other 10 held out.
        //   theft (two slots):       training min(81, 16) · 2 = 32 records; held-out 81 · 2 = 162 prompts: 8 validation, 16 held out.
        var world = ToyWorld.Generate(1, new WorldOptions());
        Assert.Equal(6 * 8, world.HarmfulValidation.Count);
        Assert.All(world.HarmfulValidation.GroupBy(r => r.Category), g => Assert.Equal(8, g.Count()));
        Assert.Equal(5 * 10 + 16, world.HarmfulHeldOut.Count);
        Assert.Equal(16, world.HarmfulHeldOut.Count(r => r.Category == "theft"));
        Assert.Equal(5 * 18 + 32, world.RefusalTrain.Count);
        Assert.Equal(world.RefusalTrain.Count, world.ComplianceTrain.Count);
        Assert.Equal(32, world.RefusalTrain.Count(r => r.Category == "theft"));
    }
}
