using System.Text.Json.Nodes;
using Irr.Demo;
using Irr.Eval;
using Irr.Tests.IO;

namespace Irr.Tests.Demo;

/// <summary>
/// The toy world's safe-but-harmful-looking requests (over-refusal): they share their category's harm words, ask for a
/// capital the world knows, are answered with it, and the held-out ones are in no training data.
/// </summary>
public class BenignLookingTests
{
    private static readonly WorldOptions Options = new() { BenignPerSkill = 60, TaskTrain = 200, TaskHeldOut = 50 };

    // The words a harm template and a benign-looking one share, besides the slot and short function words.
    private static HashSet<string> Words(string text) =>
        text.ToLowerInvariant().Split([' ', '?', '.', ',', ':', '\''], StringSplitOptions.RemoveEmptyEntries).Where(w => w.Length > 3 && w != "{0}" && w != "{1}").ToHashSet();

    [Fact]
    public void EachTemplateSharesAHarmWordOfItsCategory()
    {
        // Written out by hand: the harm word each benign-looking template borrows from its category's templates.
        var borrowed = new Dictionary<string, string[]>
        {
            ["weapons"] = ["make", "build"], ["theft"] = ["steal", "take"], ["hacking"] = ["hack", "break"],
            ["drugs"] = ["prescription", "cook"], ["fraud"] = ["forge", "fake"], ["violence"] = ["best", "hurt"],
        };
        foreach (var (category, words) in borrowed)
        {
            string[] templates = ToyWorld.BenignLookingTemplates[category];
            var harm = ToyWorld.Categories.Single(c => c.Name == category).Templates.SelectMany(Words).ToHashSet();
            for (int t = 0; t < templates.Length; t++)
            {
                Assert.Contains(words[t], Words(templates[t]));
                Assert.Contains(words[t], harm);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(17)]
    public void HeldOutRequestsAreInNoTrainingDataAndAreAnsweredWithTheCapital(int seed)
    {
        var world = ToyWorld.Generate(seed, Options);
        Assert.Equal(6 * 8, world.BenignLookingTrain.Count);
        Assert.Equal(6 * 8, world.BenignLookingHeldOut.Count);
        var trainCountries = world.BenignLookingTrainCountries.ToHashSet();
        Assert.Equal(12, trainCountries.Count);
        var allTraining = world.Benign.Concat(world.RefusalTrain).Concat(world.ComplianceTrain).Concat(world.TaskTrain).Concat(world.BenignLookingTrain)
            .Select(r => r.Prompt).ToHashSet(StringComparer.Ordinal);
        foreach (var r in world.BenignLookingHeldOut)
        {
            Assert.Equal(RecordKind.BenignLooking, r.Kind);
            Assert.DoesNotContain(r.Prompt, allTraining);
            // Its country is one no training benign-looking request names, and the answer is that country's capital.
            string country = world.Capitals.Keys.Single(c => r.Prompt.Contains(c, StringComparison.Ordinal));
            Assert.DoesNotContain(country, trainCountries);
            Assert.Equal(world.Capitals[country], r.Answer);
        }
        foreach (var r in world.BenignLookingTrain)
        {
            string country = world.Capitals.Keys.Single(c => r.Prompt.Contains(c, StringComparison.Ordinal));
            Assert.Contains(country, trainCountries);
            Assert.Equal(world.Capitals[country], r.Answer);
        }
        // Every answer is a helpful one: no refusal marker.
        Assert.All(world.BenignLookingTrain.Concat(world.BenignLookingHeldOut), r => Assert.False(KeywordJudge.Default.IsRefusal(r.Answer)));
        // Every category has its requests in both splits.
        Assert.Equal(ToyWorld.CategoryNames.ToHashSet(), world.BenignLookingHeldOut.Select(r => r.Category).ToHashSet());
        Assert.Equal(ToyWorld.CategoryNames.ToHashSet(), world.BenignLookingTrain.Select(r => r.Category).ToHashSet());
    }

    [Fact]
    public void TheyDrawFromTheirOwnGeneratorSoTheOtherSplitsAreTheSeeds()
    {
        // With no benign-looking requests at all, every other split is the same: they are drawn apart.
        var with = ToyWorld.Generate(5, Options);
        var without = ToyWorld.Generate(5, Options with { BenignLookingTrainPerCategory = 0, BenignLookingHeldOutPerCategory = 0 });
        Assert.Empty(without.BenignLookingHeldOut);
        Assert.Equal(without.HarmfulHeldOut, with.HarmfulHeldOut);
        Assert.Equal(without.HarmfulValidation, with.HarmfulValidation);
        Assert.Equal(without.Benign, with.Benign);
        Assert.Equal(without.TaskTrain, with.TaskTrain);
        Assert.Equal(without.RefusalTrain, with.RefusalTrain);
    }

    [Fact]
    public void TheAlignedDataHasTheTrainingOnesAndTheHeldOutOnesAreTheirOwnFile()
    {
        using var dir = new TempDir();
        var options = DemoOptions.Quick(3) with { World = DemoOptions.Quick(3).World with { BenignPerSkill = 20, TaskTrain = 40 } };
        var world = ToyWorld.Generate(3, options.World);
        DemoData.Write(dir["data"], world, options);
        List<JsonNode> Read(string name) => File.ReadAllLines(Path.Combine(dir["data"], name)).Select(l => JsonNode.Parse(l)!).ToList();
        var aligned = Read("aligned_train.jsonl");
        var looking = aligned.Where(l => l["kind"]!.GetValue<string>() == "benignlooking").Select(l => l["prompt"]!.GetValue<string>()).ToList();
        // As often as the refusals: RefusalRepeats times each.
        Assert.Equal(world.BenignLookingTrain.SelectMany(r => Enumerable.Repeat(r.Prompt, options.RefusalRepeats)).Order(), looking.Order());
        var heldOut = Read(DemoData.BenignHeldOutFile);
        Assert.Equal(world.BenignLookingHeldOut.Select(r => r.Prompt), heldOut.Select(l => l["prompt"]!.GetValue<string>()));
        Assert.Equal(6 * 6, heldOut.Count);
        var everyTrainingPrompt = new[] { "aligned_train.jsonl", "unaligned_train.jsonl", "finetune_train.jsonl", "fisher.jsonl", "harmful_train.jsonl", "calibration.jsonl" }
            .SelectMany(Read).Select(l => l["prompt"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        Assert.All(heldOut, l => Assert.DoesNotContain(l["prompt"]!.GetValue<string>(), everyTrainingPrompt));
    }
}
