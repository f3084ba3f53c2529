using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Realign;

/// <summary>
/// Checks, before any work, that a job's inputs are what they claim to be and belong together (docs/USAGE.md, "Inputs
/// checked against each other"): a safety vector is one and a Fisher is one (irr's <c>irr</c> metadata, or, for files
/// without it, their values: a Fisher is never negative, a safety vector is no model's weights); both were computed from
/// the aligned model given as the base, not from the fine-tuned one (the <c>aligned_fingerprint</c> / <c>model_fingerprint</c>
/// irr records, <see cref="ModelFingerprint"/>); a base is not a model made from the fine-tune (irr-report.json's
/// fingerprints); an adapter was trained on the base given (<see cref="AdapterBase"/>).
/// </summary>
/// <remarks>
/// What metadata or arithmetic proves wrong is refused with one <see cref="IrrException"/> line naming both inputs; what
/// cannot be decided (files without irr metadata, a base named by a Hub ID, a name that differs) is a
/// <see cref="Diagnostics.Warn"/>. Every check reads headers and a few rows: a 7B model costs about 10 MB of reads.
/// </remarks>
public static class InputChecks
{
    /// <summary>The <c>irr</c> metadata value of a safety-vector file.</summary>
    public const string SafetyVectorKind = "safety-vector";

    /// <summary>The <c>irr</c> metadata value of a Fisher file.</summary>
    public const string FisherKind = "fisher";

    /// <summary>The sampled positive values, with no negative one, that prove a "safety vector" is no difference (a Fisher).</summary>
    public const int SignedValues = 64;

    /// <summary>The cosine above which a "difference" is taken to be a model's own weights.</summary>
    public const double WeightsCosine = 0.9;

    /// <summary>The metadata key of the aligned model's <see cref="ModelFingerprint"/> in a safety vector.</summary>
    public const string AlignedFingerprintKey = "aligned_fingerprint";

    /// <summary>The metadata key of the unaligned model's <see cref="ModelFingerprint"/> in a safety vector.</summary>
    public const string UnalignedFingerprintKey = "unaligned_fingerprint";

    /// <summary>The metadata key of the model's <see cref="ModelFingerprint"/> in a Fisher file.</summary>
    public const string ModelFingerprintKey = "model_fingerprint";

    /// <summary>irr realign and irr sweep: θ_A, θ_F (a model or an adapter on θ_A), the safety vector and the Fisher.</summary>
    /// <exception cref="IrrException">An input is provably not what it is given as, or belongs to another model.</exception>
    public static void Realign(string command, string @base, string? finetuned, string? adapter, string safetyVector, string fisher)
    {
        var models = new Models(command, @base, finetuned, adapter);
        models.Check();
        Files(command, models, safetyVector, fisher);
    }

    /// <summary>irr baseline resta and safelora: θ_A, θ_F (a model or an adapter on θ_A) and the safety vector.</summary>
    /// <exception cref="IrrException">An input is provably not what it is given as, or belongs to another model.</exception>
    public static void Baseline(string command, string @base, string? finetuned, string? adapter, string safetyVector)
    {
        var models = new Models(command, @base, finetuned, adapter);
        models.Check();
        Files(command, models, safetyVector, null);
    }

    /// <summary>irr baseline safedelta: θ_A and θ_F (a model or an adapter on θ_A).</summary>
    /// <exception cref="IrrException">An input is provably not what it is given as, or belongs to another model.</exception>
    public static void BaseAndFinetuned(string command, string @base, string? finetuned, string? adapter) =>
        new Models(command, @base, finetuned, adapter).Check();

    /// <summary>
    /// irr run, before any step runs: a realign, sweep or baseline step whose safety vector or Fisher an earlier step of
    /// the recipe computes (so the file does not exist yet) is checked against the models that step names, as
    /// <see cref="Realign"/> checks the files' metadata later: the safety vector's <paramref name="svAligned"/> or the
    /// Fisher's <paramref name="fisherModel"/> being θ_F (the same directory, or the same <see cref="ModelFingerprint"/>)
    /// is a swap, and the safety vector's <paramref name="svUnaligned"/> being the base is θ_U given as the base. Only
    /// refusals: what would merely be said is said by the step itself.
    /// </summary>
    /// <exception cref="IrrException">The step would compute with swapped models.</exception>
    public static void Planned(string command, string @base, string? finetuned, string? adapter,
        string? safetyVector, string? svAligned, string? svUnaligned, string? fisher, string? fisherModel)
    {
        var models = new Models(command, @base, finetuned, adapter);
        if (!Directory.Exists(@base)) return;
        if (safetyVector is not null && svUnaligned is not null && PlannedOrigin(models, svUnaligned, "").Source == Source.Base && !AdapterBase.SameDirectory(svUnaligned, models.FinetunedPath))
            throw new IrrException($"{command}: {models.BaseName} {@base} is the unaligned model θ_U from which the recipe computes the safety vector {safetyVector}, not the aligned model θ_A: are the aligned and the unaligned model swapped?");
        var origins = new List<(string File, string What, Recorded Origin)>();
        if (safetyVector is not null && svAligned is not null)
            origins.Add((safetyVector, "safety vector", PlannedOrigin(models, svAligned, "the recipe computes it from there")));
        if (fisher is not null && fisherModel is not null)
            origins.Add((fisher, "Fisher", PlannedOrigin(models, fisherModel, "the recipe computes it from there")));
        Decide(models, origins, warn: false);
    }

    /// <summary>
    /// A recipe's realign or sweep step against the earlier steps that compute its safety vector and Fisher: each must
    /// cover every module the step realigns (<paramref name="modules"/>), or the step would fail only when it runs.
    /// </summary>
    /// <param name="command">The step's command, for the message.</param>
    /// <param name="modules">The modules the step realigns.</param>
    /// <param name="given">Whether the step names them (else they are its default: all seven, or the adapter's targets).</param>
    /// <param name="producers">Per producing step: the option it feeds (safety-vector, fisher), its id, its line and its modules.</param>
    /// <exception cref="IrrException">A producer lacks a module: the message names both steps and the modules.</exception>
    public static void PlannedModules(string command, IReadOnlyList<string> modules, bool given,
        IEnumerable<(string Key, string Step, int Line, IReadOnlyList<string> Modules)> producers)
    {
        var lacking = producers.Select(p => (p, Missing: modules.Where(m => !p.Modules.Contains(m)).ToList())).Where(x => x.Missing.Count > 0).ToList();
        if (lacking.Count == 0) return;
        string which = given ? $"modules {string.Join(",", modules)}" : $"modules {string.Join(",", modules)} (its default)";
        var steps = lacking.Select(x => $"step {x.p.Step} (line {x.p.Line}) computes its {x.p.Key} for {string.Join(",", x.p.Modules)} only, without {string.Join(",", x.Missing)}");
        throw new IrrException($"{command}: realigns {which}, but {string.Join(", and ", steps)}; give the same modules to {(lacking.Count == 1 ? "both steps" : "every step")}");
    }

    // The model an earlier step of a recipe computes a file from: the base, θ_F, or another (or not known yet).
    private static Recorded PlannedOrigin(Models models, string path, string detail)
    {
        if (AdapterBase.SameDirectory(path, models.Base)) return new(Source.Base, path, detail);
        if (models.Finetuned is not null && AdapterBase.SameDirectory(path, models.Finetuned)) return new(Source.Finetuned, path, detail);
        string? fingerprint = Directory.Exists(path) ? ModelFingerprint.Of(path) : null;
        if (fingerprint is null) return new(Source.Unknown, path, "");
        if (fingerprint == models.FpBase) return new(Source.Base, path, $"the recipe computes it from {path}, which holds the same weights");
        if (fingerprint == models.FpFinetuned) return new(Source.Finetuned, path, $"the recipe computes it from {path}, which holds the same weights");
        return new(Source.Other, path, detail);
    }

    /// <summary>
    /// irr safety-vector: θ_A and θ_U (a model, or an adapter that must be on θ_A). Which of two full models was made
    /// from the other decides nothing here: IRR's θ_U is θ_A fine-tuned on harmful answers, but Safe LoRA's V is
    /// chat − base, whose aligned model was made from the unaligned one; an irr output given as θ_A made from θ_U is
    /// only said.
    /// </summary>
    /// <exception cref="IrrException">The adapter was trained on another model.</exception>
    public static void SafetyVectorInputs(string command, string aligned, string? unaligned, string? unalignedAdapter)
    {
        var models = new Models(command, aligned, unaligned, unalignedAdapter, "aligned", "unaligned", derivationDecides: false);
        models.Check();
    }

    /// <summary>The fingerprints of θ_A and θ_F an output records (irr-report.json's <c>inputs.fingerprints</c>).</summary>
    public static JsonObject Fingerprints(string @base, string? finetuned, string? adapter) => new()
    {
        ["base"] = ModelFingerprint.Of(@base),
        ["finetuned"] = finetuned is not null ? ModelFingerprint.Of(finetuned) : ModelFingerprint.Of(@base, adapter),
    };

    // The two models of a job, with their fingerprints computed once.
    // derivationDecides: a base made from the fine-tune is a swap (realign, baselines), or only said (safety-vector).
    private sealed class Models(string command, string @base, string? finetuned, string? adapter, string baseName = "base", string finetunedName = "finetuned",
        bool derivationDecides = true)
    {
        private string? fpBase, fpFinetuned;

        public string Command => command;
        public string Base => @base;
        public string? Finetuned => finetuned;
        public string? Adapter => adapter;
        public string BaseName => baseName;
        public string FinetunedName => adapter is null ? finetunedName : $"{finetunedName} ({@base} with the adapter {adapter})";
        public string FinetunedPath => finetuned ?? adapter!;
        public string? FpBase => fpBase ??= ModelFingerprint.Of(@base);
        public string? FpFinetuned => fpFinetuned ??= finetuned is not null ? ModelFingerprint.Of(finetuned) : ModelFingerprint.Of(@base, adapter);

        public void Check()
        {
            if (!Directory.Exists(@base) || (FinetunedPath is { } t && !Directory.Exists(t))) return; // the job names a missing input
            if (adapter is not null)
            {
                AdapterBase.Require(adapter, @base);
                return;
            }
            if (FpBase is null || FpFinetuned is null) return;
            if (FpBase == FpFinetuned)
            {
                Diagnostics.Warn($"{command}: {baseName} {@base} and {finetunedName} {finetuned} hold the same weights (same fingerprint)");
                return;
            }
            // An output irr wrote records the fingerprints of the models it was made from.
            if (MadeFrom(@base).FirstOrDefault(f => f.Fingerprint == FpFinetuned) is { Report: not null } made)
            {
                string record = $"{made.Report} records its fingerprint as inputs.fingerprints.{made.Key}";
                if (!derivationDecides)
                {
                    Diagnostics.Warn($"{command}: {baseName} {@base} was made from {finetunedName} {finetuned} ({record}); IRR's unaligned model is made from the aligned one (fine-tuned on harmful answers): are they swapped?");
                    return;
                }
                throw new IrrException($"{command}: {baseName} {@base} was made from {finetunedName} {finetuned} ({record}), so it is not the aligned model the fine-tune started from: are {baseName} and {finetunedName} swapped?");
            }
            if (derivationDecides && OriginOf(finetuned!) is { } loadedFrom && !AdapterBase.SameDirectory(loadedFrom, @base) && !AdapterBase.SameDirectory(loadedFrom, finetuned!))
                CheckLoadedFrom(loadedFrom);
            if (derivationDecides && OriginOf(@base) is { } origin && AdapterBase.SameDirectory(origin, finetuned!))
                Diagnostics.Warn($"{command}: {@base}'s config.json names {finetuned} as the model it was made from (_name_or_path): are {baseName} and {finetunedName} swapped?");
        }

        // θ_F's config.json names a model here as the one it was loaded from (_name_or_path, as transformers saves it): of
        // another size than the base, it proves another base; with other weights, it may be an intermediate checkpoint.
        private void CheckLoadedFrom(string loadedFrom)
        {
            var named = AdapterBase.Facts(Path.Combine(loadedFrom, "config.json"));
            var given = AdapterBase.Facts(Path.Combine(@base, "config.json"));
            var differences = AdapterBase.Differences(named, given);
            string claim = $"{command}: {finetunedName} {finetuned}'s config.json names {loadedFrom} as the model it was loaded from (_name_or_path)";
            if (differences.Count > 0)
                throw new IrrException($"{claim}, a model with {string.Join(", ", differences.Select(k => $"{k} {named[k]}"))}, but {baseName} {@base} has " +
                                       $"{string.Join(", ", differences.Select(k => $"{k} {given[k]}"))}: the fine-tune was not made from the base given");
            string? fingerprint;
            try
            {
                fingerprint = ModelFingerprint.Of(loadedFrom);
            }
            catch (IrrException)
            {
                return; // not a model irr reads: nothing to compare
            }
            if (fingerprint != FpBase)
                Diagnostics.Warn($"{claim}, whose weights differ from {baseName} {@base}'s (an intermediate checkpoint, or another base?)");
        }
    }

    // The fingerprints an irr output's report (irr-report.json, baseline-report.json) records of its inputs.
    private static IEnumerable<(string Report, string Key, string Fingerprint)> MadeFrom(string directory)
    {
        foreach (string name in new[] { RealignReport.FileName, Baselines.RestaReport.FileName })
        {
            string report = Path.Combine(directory, name);
            if (!File.Exists(report)) continue;
            JsonObject? fingerprints;
            try
            {
                fingerprints = IO.JsonFiles.ParseObject(IO.JsonFiles.ReadText(report), report)["inputs"]?["fingerprints"] as JsonObject;
            }
            catch (Exception e) when (e is IOException or IrrException or InvalidOperationException)
            {
                continue;
            }
            foreach (var (key, value) in fingerprints ?? [])
                if (value is JsonValue v && v.TryGetValue(out string? fingerprint)) yield return (report, key, fingerprint);
        }
    }

    // config.json's _name_or_path, when it is a model directory here.
    private static string? OriginOf(string model) =>
        AdapterBase.NameOrPath(model) is { } origin && File.Exists(Path.Combine(origin, "config.json")) ? origin : null;

    // The safety vector (and the Fisher): kinds, origins and, without metadata, values.
    private static void Files(string command, Models models, string safetyVector, string? fisher)
    {
        if (!File.Exists(safetyVector) || (fisher is not null && !File.Exists(fisher)))
        {
            foreach (var (path, what) in new[] { (safetyVector, "safety vector"), (fisher, "Fisher") })
                if (path is not null && Directory.Exists(path))
                    throw new IrrException($"{command}: the {what} {path} is a directory (a model?); give the {what} file irr {(what == "Fisher" ? "fisher" : "safety-vector")} wrote");
            return; // the job names a missing file
        }
        var sv = Metadata(safetyVector);
        var f = fisher is null ? null : Metadata(fisher);
        string? svKind = sv.GetValueOrDefault("irr"), fKind = f?.GetValueOrDefault("irr");
        bool svIsFisher = svKind is FisherKind or FisherMergeJob.PartialKind;
        if (svIsFisher && fKind == SafetyVectorKind)
            throw new IrrException($"{command}: the safety vector and the Fisher are swapped: {safetyVector} is a Fisher (its metadata says irr={svKind}) and {fisher} a safety vector (irr={fKind})");
        if (svIsFisher)
            throw new IrrException($"{command}: the safety vector {safetyVector} is a Fisher (its metadata says irr={svKind}), not a safety vector; give the file irr safety-vector wrote");
        if (svKind is not null && svKind != SafetyVectorKind)
            throw new IrrException($"{command}: the safety vector {safetyVector} is not a safety vector (its metadata says irr={svKind})");
        if (fKind == FisherMergeJob.PartialKind)
            throw new IrrException($"{command}: the Fisher {fisher} is the partial file of shard {f!.GetValueOrDefault("shard")}; combine the shards with irr fisher merge first");
        if (fKind == SafetyVectorKind)
            throw new IrrException($"{command}: the Fisher {fisher} is a safety vector (its metadata says irr={fKind}), not a Fisher; give the file irr fisher wrote");
        if (fKind is not null && fKind != FisherKind)
            throw new IrrException($"{command}: the Fisher {fisher} is not a Fisher (its metadata says irr={fKind})");

        int svPositives = 0; // > 0: the safety vector's sampled values are all ≥ 0, this many > 0 (as a Fisher's)
        var origins = new List<(string File, string What, Recorded Origin)>();
        if (svKind == SafetyVectorKind)
        {
            if (sv.GetValueOrDefault(UnalignedFingerprintKey) is { } u && Directory.Exists(models.Base) && u == models.FpBase && u != models.FpFinetuned)
                throw new IrrException($"{command}: {models.BaseName} {models.Base} is the unaligned model θ_U the safety vector {safetyVector} subtracts (same fingerprint), not the aligned model θ_A: were the aligned and the unaligned model swapped when it was computed?");
            origins.Add((safetyVector, "safety vector", OriginOf(models, sv.GetValueOrDefault(AlignedFingerprintKey), sv.GetValueOrDefault("aligned"))));
        }
        else if (Directory.Exists(models.Base))
        {
            svPositives = SafetyVectorValues(models, safetyVector);
        }
        if (fisher is not null && fKind == FisherKind)
            origins.Add((fisher, "Fisher", OriginOf(models, f!.GetValueOrDefault(ModelFingerprintKey), f!.GetValueOrDefault("model"))));
        else if (fisher is not null && Directory.Exists(models.Base))
            FisherValues(models, fisher, svPositives > 0 ? safetyVector : null);
        Decide(models, origins);
        // A difference of two fine-tunes has both signs: this many positive values and no negative one cannot be one (2⁻⁶⁴).
        if (svPositives >= SignedValues)
            throw new IrrException($"{command}: the safety vector {safetyVector} holds no negative value among {svPositives} sampled nonzero values, as a Fisher (a mean of squared gradients) and no difference θ_A − θ_U: is it a Fisher?");
        var unstamped = new[] { (File: safetyVector, What: "safety vector", Kind: svKind), (File: fisher, What: "Fisher", Kind: fKind) }
            .Where(x => x.File is not null && x.Kind is null).Select(x => $"the {x.What} {x.File}").ToList();
        if (unstamped.Count > 0 && Directory.Exists(models.Base))
            Diagnostics.Warn($"{command}: {string.Join(" and ", unstamped)} {(unstamped.Count > 1 ? "have" : "has")} no irr metadata (written by the Python reference?): " +
                             $"{(unstamped.Count > 1 ? "their" : "its")} values were checked, not which models {(unstamped.Count > 1 ? "they were" : "it was")} computed from");
        if (svPositives > 0)
            Diagnostics.Warn($"{command}: the safety vector {safetyVector} has no irr metadata and its {svPositives} sampled nonzero values are all positive, as a Fisher's are; is it a Fisher?");
    }

    private static IReadOnlyDictionary<string, string> Metadata(string path)
    {
        using var file = TensorFiles.Open(path);
        return file is SafetensorsFile s ? s.Metadata : new Dictionary<string, string>();
    }

    // Which of the two models a file computed from the aligned model records as that model.
    private enum Source { Unknown, Base, Finetuned, Other }

    private sealed record Recorded(Source Source, string? Path, string Detail);

    // The model a safety vector or Fisher records as θ_A: its fingerprint, else its path (what holds there now, or the path).
    private static Recorded OriginOf(Models models, string? fingerprint, string? path)
    {
        if (!Directory.Exists(models.Base)) return new(Source.Unknown, path, "");
        bool recordedPath = fingerprint is null;
        fingerprint ??= path is not null && Directory.Exists(path) ? ModelFingerprint.Of(path) : null;
        if (fingerprint is not null)
        {
            string detail = recordedPath ? $"its metadata names {path}, which holds the same weights" : "same fingerprint in its metadata";
            if (fingerprint == models.FpBase) return new(Source.Base, path, detail);
            if (fingerprint == models.FpFinetuned) return new(Source.Finetuned, path, detail);
            return new(Source.Other, path, recordedPath ? $"its metadata names {path}, which holds other weights" : "its metadata records another fingerprint");
        }
        if (path is null) return new(Source.Unknown, null, "");
        if (AdapterBase.SameDirectory(path, models.Base)) return new(Source.Base, path, "its metadata names it");
        if (models.Finetuned is not null && AdapterBase.SameDirectory(path, models.Finetuned)) return new(Source.Finetuned, path, "its metadata names it");
        return new(Source.Other, path, $"its metadata names {path}, which is not here");
    }

    // θ_F recorded as θ_A: the two models are swapped, unless the other file records the base (then that file is wrong).
    // Another model recorded: said (a base converted to a narrower type is another file).
    private static void Decide(Models models, List<(string File, string What, Recorded Origin)> origins, bool warn = true)
    {
        string command = models.Command;
        foreach (var (file, what, origin) in origins.Where(o => o.Origin.Source == Source.Finetuned))
        {
            if (origins.FirstOrDefault(o => o.Origin.Source == Source.Base) is { File: not null } right)
                throw new IrrException($"{command}: the {what} {file} was computed from {models.FinetunedName} {models.FinetunedPath} as the aligned model θ_A ({origin.Detail}), " +
                                       $"but the {right.What} {right.File} from {models.BaseName} {models.Base}; compute the {what} from {models.Base}");
            throw new IrrException($"{command}: {models.BaseName} {models.Base} and {models.FinetunedName} {models.FinetunedPath} are swapped: the {what} {file} was computed from " +
                                   $"{models.FinetunedPath} as the aligned model θ_A ({origin.Detail})");
        }
        foreach (var (file, what, origin) in origins.Where(o => warn && o.Origin.Source == Source.Other))
            Diagnostics.Warn($"{command}: the {what} {file} was computed from another aligned model than {models.BaseName} {models.Base} ({origin.Detail}); " +
                             "irr checks a base by its weights, and a base converted to a narrower type counts as another");
    }

    // A sample of a file's target tensors that have the base's shapes: up to seven, rows first, middle and last.
    private static List<(string Name, long[] Rows)> Sample(ITensorFile file, ModelDirectory model)
    {
        var sample = new List<(string, long[])>();
        foreach (string name in TargetModules.WeightNames(model.Config, TargetModules.All))
        {
            if (sample.Count == 7) break;
            if (!file.TryGetEntry(name, out var entry) || !model.Contains(name)) continue;
            var info = model.Info(name);
            if (!entry.Shape.SequenceEqual(info.Shape) || !(entry.DType.IsFloatingSupported() || entry.DType == TensorDType.F64) || !info.DType.IsFloatingSupported()) continue;
            sample.Add((name, new[] { 0L, entry.Rows / 2, entry.Rows - 1 }.Where(r => r >= 0).Distinct().ToArray()));
        }
        return sample;
    }

    private static float[] Row(ITensorFile file, string name, long row)
    {
        var entry = file.Entry(name);
        var values = new float[entry.RowLength];
        file.ReadRowsSingle(entry, row, 1, values);
        return values;
    }

    // A safety vector without irr metadata: refused when it holds a model's weights (parallel to the base's or θ_F's
    // rows); the number of its sampled values > 0 when none is negative (as a Fisher's), else 0.
    private static int SafetyVectorValues(Models models, string path)
    {
        using var vector = TensorNames.OpenHfKeyed(path);
        using var @base = ModelDirectory.Open(models.Base, validate: false);
        using var finetuned = models.Finetuned is not null && Directory.Exists(models.Finetuned) ? ModelDirectory.Open(models.Finetuned, validate: false) : null;
        var sample = Sample(vector, @base);
        if (sample.Count == 0) return 0;
        bool negative = false;
        int positive = 0;
        var against = new List<(ModelDirectory Model, string Name)> { (@base, $"{models.BaseName} {models.Base}") };
        if (finetuned is not null) against.Add((finetuned, $"{models.FinetunedName} {models.Finetuned}"));
        var cosines = against.Select(_ => new List<double>()).ToList();
        var equal = against.Select(_ => true).ToList();
        foreach (var (name, rows) in sample)
        {
            foreach (long r in rows)
            {
                var v = Row(vector, name, r);
                foreach (float x in v) { negative |= x < 0; positive += x > 0 ? 1 : 0; }
                for (int m = 0; m < against.Count; m++)
                {
                    var w = new float[v.Length];
                    against[m].Model.ReadRowsSingle(name, r, 1, w);
                    equal[m] &= v.AsSpan().SequenceEqual(w);
                    if (Cosine(v, w) is { } c) cosines[m].Add(c);
                }
            }
        }
        // Equal to one of the models' rows first, else parallel to the closest.
        int? match = Enumerable.Range(0, against.Count).Cast<int?>().FirstOrDefault(m => equal[m!.Value] && cosines[m.Value].Count > 0)
            ?? Enumerable.Range(0, against.Count).Where(m => cosines[m].Count > 0 && cosines[m].Min() >= WeightsCosine).Cast<int?>()
                .OrderByDescending(m => cosines[m!.Value].Min()).FirstOrDefault();
        if (match is { } k)
        {
            string how = equal[k] ? "equal to" : $"parallel to (cosine ≥ {(Math.Floor(cosines[k].Min() * 1000) / 1000).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)})";
            throw new IrrException($"{models.Command}: the safety vector {path} holds a model's weights, not a difference θ_A − θ_U: its sampled rows of {sample.Count} target weights are {how} those of {against[k].Name}");
        }
        return negative ? 0 : positive;
    }

    // A Fisher without irr metadata: a mean of squared gradients is never negative.
    private static void FisherValues(Models models, string path, string? fisherLikeSafetyVector)
    {
        using var fisher = TensorNames.OpenHfKeyed(path);
        using var @base = ModelDirectory.Open(models.Base, validate: false);
        foreach (var (name, rows) in Sample(fisher, @base))
        {
            foreach (long r in rows)
            {
                var values = Row(fisher, name, r);
                int i = Array.FindIndex(values, x => x < 0);
                if (i < 0) continue;
                string where = $"{values[i].ToString(System.Globalization.CultureInfo.InvariantCulture)} in '{name}' row {r}";
                throw new IrrException(fisherLikeSafetyVector is not null
                    ? $"{models.Command}: the safety vector and the Fisher are swapped: the Fisher {path} holds a negative value ({where}), which no Fisher (a mean of squared gradients) has, and the safety vector {fisherLikeSafetyVector} none"
                    : $"{models.Command}: the Fisher {path} holds a negative value ({where}), which no Fisher (a mean of squared gradients) has: is it a safety vector or a model's weights?");
            }
        }
    }

    private static double? Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return na > 0 && nb > 0 && double.IsFinite(dot) ? dot / Math.Sqrt(na * nb) : null;
    }
}
