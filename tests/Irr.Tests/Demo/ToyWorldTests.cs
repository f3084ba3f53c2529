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
}
