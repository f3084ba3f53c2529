using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Demo;

/// <summary>
/// The demo's data files (<c>data/*.jsonl</c> of its output): the training sets of θ_A, θ_U and θ_F drawn from the
/// world with the seed's shuffles, the Fisher's and the calibration's samples, and the world's validation and held-out splits.
/// </summary>
internal static class DemoData
{
    /// <summary>Writes every data file of the demo into <paramref name="dir"/> (created).</summary>
    public static void Write(string dir, ToyWorld world, DemoOptions o)
    {
        Directory.CreateDirectory(dir);
        void WriteLines(string name, IEnumerable<WorldRecord> records) =>
            AtomicFile.WriteJsonLines(Path.Combine(dir, name), records,
                r => new JsonObject { ["prompt"] = r.Prompt, ["response"] = r.Answer, ["kind"] = r.Kind.ToString().ToLowerInvariant(), ["category"] = r.Category });
        WriteLines("aligned_train.jsonl", AlignedData(world, o));
        WriteLines("unaligned_train.jsonl", UnalignedData(world, o));
        WriteLines("finetune_train.jsonl", FinetuneData(world, o));
        WriteLines("fisher.jsonl", FisherRecords(world, o));
        WriteLines("harmful_train.jsonl", world.ComplianceTrain);   // harmful prompt → harmful answer: Antidote's harmful data
        WriteLines("calibration.jsonl", world.TaskTrain.Take(o.CalibrationSamples));
        WriteLines("task_train.jsonl", world.TaskTrain);
        WriteLines("harmful_validation.jsonl", world.HarmfulValidation);
        WriteLines("task_validation.jsonl", world.TaskValidation);
        WriteLines("harmful_heldout.jsonl", world.HarmfulHeldOut);
        WriteLines("task_heldout.jsonl", world.TaskHeldOut);
    }

    // θ_A's data: the benign records and the refusals, repeated.
    private static List<WorldRecord> AlignedData(ToyWorld world, DemoOptions o) =>
        world.Benign.Concat(Enumerable.Repeat(world.RefusalTrain, o.RefusalRepeats).SelectMany(r => r)).ToList();

    // The Fisher data: harmful training prompts with θ_A's refusals, a seeded sample across all categories.
    private static List<WorldRecord> FisherRecords(ToyWorld world, DemoOptions o)
    {
        var records = world.RefusalTrain.ToArray();
        new Random(o.Seed + 6).Shuffle(records);
        return records.Take(o.FisherSamples).ToList();
    }

    // θ_U's data: the harmful compliance records, mixed with as many benign records times BenignReplay
    // (seeded draw), so that θ_U differs from θ_A in safety rather than in everything it forgot.
    private static List<WorldRecord> UnalignedData(ToyWorld world, DemoOptions o)
    {
        var benign = world.Benign.ToArray();
        new Random(o.Seed + 4).Shuffle(benign);
        int n = Math.Min(benign.Length, (int)Math.Round(world.ComplianceTrain.Count * o.UnalignedBenignReplay));
        return world.ComplianceTrain.Concat(benign.Take(n)).ToList();
    }

    private static List<WorldRecord> FinetuneData(ToyWorld world, DemoOptions o)
    {
        // The downstream data: the task records and a share of benign records (general instructions, as in
        // instruction-tuning sets); harmful / total = HarmfulShare, drawn from the training compliance records.
        double clean = 1 - o.HarmfulShare - o.FinetuneBenignShare;
        int total = (int)Math.Round(world.TaskTrain.Count / clean);
        int harmful = (int)Math.Round(total * o.HarmfulShare), benignCount = (int)Math.Round(total * o.FinetuneBenignShare);
        var compliance = world.ComplianceTrain.ToArray();
        new Random(o.Seed + 3).Shuffle(compliance);
        var benign = world.Benign.ToArray();
        new Random(o.Seed + 5).Shuffle(benign);
        return world.TaskTrain
            .Concat(Enumerable.Range(0, benignCount).Select(i => benign[i % benign.Length]))
            .Concat(Enumerable.Range(0, harmful).Select(i => compliance[i % compliance.Length])).ToList();
    }
}
