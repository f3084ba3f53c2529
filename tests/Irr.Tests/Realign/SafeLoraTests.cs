using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Realign.Baselines;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>Safe LoRA (irr baseline safelora): the math against naive float64 loops, the selection rules, the adapter it writes, and its refusals.</summary>
public class SafeLoraTests
{
    private static readonly string[] Targets = ["q_proj", "v_proj", "up_proj", "down_proj"];
    private const int Rank = 4;
    private const double Alpha = 8; // scale α/r = 2

    // ---- the math ----

    // Naive C = V·Vᵀ / ‖V‖_F in double.
    internal static double[,] NaiveC(float[] v, int rows, int cols)
    {
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        var c = new double[rows, rows];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < rows; k++)
            {
                double s = 0;
                for (int j = 0; j < cols; j++) s += (double)v[i * cols + j] * v[k * cols + j];
                c[i, k] = s / norm;
            }
        return c;
    }

    internal static double[,] NaiveCB(double[,] c, float[] b, int rows, int rank)
    {
        var p = new double[rows, rank];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < rank; k++)
                for (int l = 0; l < rows; l++) p[i, k] += c[i, l] * b[l * rank + k];
        return p;
    }

    // Naive cos(vec(C·ΔW), vec(ΔW)) with ΔW = s·B·A formed explicitly.
    internal static double NaiveSimilarity(double[,] c, float[] b, float[] a, int rows, int rank, int cols, double scale)
    {
        var dw = new double[rows, cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                for (int k = 0; k < rank; k++) dw[i, j] += scale * b[i * rank + k] * a[k * cols + j];
        double inner = 0, n1 = 0, n2 = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double cdw = 0;
                for (int l = 0; l < rows; l++) cdw += c[i, l] * dw[l, j];
                inner += cdw * dw[i, j];
                n1 += cdw * cdw;
                n2 += dw[i, j] * dw[i, j];
            }
        return inner / Math.Sqrt(n1 * n2);
    }

    private static void Close(double expected, double actual, double tolerance, string what) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * (1 + Math.Abs(expected)), $"{what}: {actual}, expected {expected}");

    [Theory]
    [InlineData(5, 7, 3, 2.0)]
    [InlineData(12, 6, 4, -0.5)] // a negative scale cancels in the cosine
    [InlineData(300, 9, 2, 1.0)] // more columns of V than one chunk of ProjectB
    public void ProjectionProjectBAndSimilarityMatchNaiveFloat64(int rows, int cols, int rank, double scale)
    {
        var rng = new Random(rows * 31 + cols);
        var v = Tensors.Reference.Uniform(rng, rows * cols);
        var b = Tensors.Reference.Uniform(rng, rows * rank);
        var a = Tensors.Reference.Uniform(rng, rank * cols);
        var c = NaiveC(v, rows, cols);
        var projection = SafeLora.Projection(v, rows, cols);
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < rows; k++) Close(c[i, k], projection[i * rows + k], 1e-12, $"C[{i},{k}]");
        var cb = NaiveCB(c, b, rows, rank);
        var projected = SafeLora.ProjectB(v, rows, cols, b, rank);
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < rank; k++) Close(cb[i, k], projected[i * rank + k], 1e-11, $"C·B[{i},{k}]");
        double expected = NaiveSimilarity(c, b, a, rows, rank, cols, scale);
        Close(expected, SafeLora.Similarity(projected, b, a, rows, rank, cols, scale), 1e-10, "similarity");
        Assert.InRange(expected, -1, 1);
    }

    [Fact]
    public void SimilarityOfAZeroUpdateIsOneAndOfAnUpdateOrthogonalToVIsZero()
    {
        var rng = new Random(5);
        int rows = 6, cols = 5, rank = 2;
        var v = Tensors.Reference.Uniform(rng, rows * cols);
        var a = Tensors.Reference.Uniform(rng, rank * cols);
        var b = Tensors.Reference.Uniform(rng, rows * rank);
        var zeroB = new float[rows * rank];
        Assert.Equal(1, SafeLora.Similarity(SafeLora.ProjectB(v, rows, cols, zeroB, rank), zeroB, a, rows, rank, cols, 2));
        Assert.Equal(1, SafeLora.Similarity(SafeLora.ProjectB(v, rows, cols, b, rank), b, new float[rank * cols], rows, rank, cols, 2));
        Assert.Equal(1, SafeLora.Similarity(SafeLora.ProjectB(v, rows, cols, b, rank), b, a, rows, rank, cols, 0)); // s = 0
        // V = 0: C = 0, C·ΔW = 0 with ΔW ≠ 0.
        var zeroV = new float[rows * cols];
        Assert.All(SafeLora.Projection(zeroV, rows, cols), x => Assert.Equal(0, x));
        Assert.Equal(0, SafeLora.Similarity(SafeLora.ProjectB(zeroV, rows, cols, b, rank), b, a, rows, rank, cols, 2));
        // V with one non-zero row: C projects onto that row; B with zero there is orthogonal to it.
        var oneRow = new float[rows * cols];
        for (int j = 0; j < cols; j++) oneRow[j] = j + 1;
        var orthogonal = (float[])b.Clone();
        orthogonal[0] = orthogonal[1] = 0;
        Assert.Equal(0, SafeLora.Similarity(SafeLora.ProjectB(oneRow, rows, cols, orthogonal, rank), orthogonal, a, rows, rank, cols, 2));
        // ΔW inside the subspace of a rank-1 V (C = ‖v‖·e₀e₀ᵀ): C·ΔW is a positive multiple of ΔW, similarity 1.
        var inside = new float[rows * rank];
        inside[0] = 1;
        inside[1] = -2;
        Assert.Equal(1, SafeLora.Similarity(SafeLora.ProjectB(oneRow, rows, cols, inside, rank), inside, a, rows, rank, cols, 2), 12);
    }

    [Fact]
    public void ThresholdSelectsStrictlyBelow()
    {
        double[] s = [0.2, 0.5, -0.3, 0.5000001, 0.9];
        Assert.Equal([true, false, true, false, false], SafeLora.SelectBelow(s, 0.5));
        Assert.Equal([false, false, false, false, false], SafeLora.SelectBelow(s, -1)); // all above τ
        Assert.Equal([true, true, true, true, true], SafeLora.SelectBelow(s, 1));
        Assert.Equal([false, false], SafeLora.SelectBelow([1.0, 1.0], 1)); // ΔW = 0 is never projected
        Assert.Empty(SafeLora.SelectBelow([], 0.5));
    }

    [Fact]
    public void LayersSelectsTheKLowestWithTiesToTheEarlierMatrix()
    {
        double[] s = [0.4, 0.1, 0.4, 0.7, 0.4, 0.1];
        Assert.Equal([false, true, false, false, false, true], SafeLora.SelectLowest(s, 2));
        Assert.Equal([true, true, false, false, false, true], SafeLora.SelectLowest(s, 3)); // the tie at 0.4: the first one
        Assert.Equal([true, true, true, false, false, true], SafeLora.SelectLowest(s, 4));
        Assert.Equal([false, false, false, false, false, false], SafeLora.SelectLowest(s, 0));
        Assert.Equal([true, true, true, true, true, true], SafeLora.SelectLowest(s, 6));
        Assert.Equal([true, true, true, true, true, true], SafeLora.SelectLowest(s, 100));
        Assert.Equal([true, false, false], SafeLora.SelectLowest([0.3, 0.3, 0.3], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeLora.SelectLowest(s, -1));
    }

    // ---- the command ----

    private sealed record Setup(string Aligned, string Unaligned, string Finetuned, string Vector, string Adapter,
        Dictionary<string, (float[] A, float[] B, int Out, int In)> Layers);

    // θ_A, θ_U (tiny chat models), the safety vector from irr safety-vector, and a rank-4 adapter with seeded random A and B.
    private static Setup Make(TempDir dir, TensorDType dtype = TensorDType.F32, string vectorModules = "all")
    {
        var (aligned, unaligned, finetuned) = ModelCommandTests.ThreeModels(dir);
        string vector = dir["v.safetensors"];
        var (code, _, err) = CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", vectorModules, "-o", vector);
        Assert.True(code == 0, err);
        using var model = ModelDirectory.Open(aligned);
        var rng = new Random(17);
        var layers = new Dictionary<string, (float[] A, float[] B, int Out, int In)>();
        foreach (int layer in new[] { 0, 1 })
            foreach (string module in Targets)
            {
                string name = ModelConfig.LinearWeightName(layer, module);
                var shape = model.Info(name).Shape;
                int outDim = (int)shape[0], inDim = (int)shape[1];
                var a = Tensors.Reference.Uniform(rng, Rank * inDim);
                var b = Tensors.Reference.Uniform(rng, outDim * Rank);
                if (dtype == TensorDType.BF16) { a = RoundBf16(a); b = RoundBf16(b); }
                layers[name] = (a, b, outDim, inDim);
            }
        string adapter = dir["adapter"];
        LoraAdapter.Write(adapter, LoraConfig.Create(Rank, Alpha, Targets, aligned), layers.Select(kv => (kv.Key, kv.Value.A, kv.Value.B, kv.Value.Out, kv.Value.In)).ToList(), dtype, [aligned]);
        return new Setup(aligned, unaligned, finetuned, vector, adapter, layers);
    }

    private static float[] RoundBf16(float[] x) =>
        x.Select(f => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(f) & unchecked((int)0xFFFF0000))).ToArray();

    private static (int Code, string Out, string Err) SafeLoraCli(params string[] args) => CliRunner.Run(["baseline", "safelora", .. args]);

    // Runs irr baseline safelora on the setup's inputs with the selection (and other) options into dir[output]; it must succeed.
    private static (string Output, string Out, string Err) Project(TempDir dir, Setup s, string output, params string[] options)
    {
        var (code, stdout, err) = SafeLoraCli(["--base", s.Aligned, "--adapter", s.Adapter, "--safety-vector", s.Vector, .. options, "-o", dir[output]]);
        Assert.True(code == 0, err);
        return (dir[output], stdout, err);
    }

    [Fact]
    public void TheProjectedAdapterMergesToTheNaiveProjectedUpdate()
    {
        using var dir = new TempDir();
        var s = Make(dir);
        var (output, stdout, err) = Project(dir, s, "safe", "--layers", "3");
        Assert.Contains("projected 3 of 8 LoRA matrices", err);
        Assert.Contains("model.layers.1.mlp.down_proj.weight", stdout);

        // The naive computation: similarities in matrix order (layer, then q v up down), the 3 lowest projected.
        using var vFile = SafetensorsFile.Open(s.Vector);
        var names = new[] { 0, 1 }.SelectMany(l => Targets.Select(m => ModelConfig.LinearWeightName(l, m))).ToList();
        var naive = new Dictionary<string, (double Similarity, double[,] CB)>();
        foreach (string name in names)
        {
            var (a, b, outDim, inDim) = s.Layers[name];
            var c = NaiveC(vFile.ReadSingle(name), outDim, inDim);
            naive[name] = (NaiveSimilarity(c, b, a, outDim, Rank, inDim, Alpha / Rank), NaiveCB(c, b, outDim, Rank));
        }
        var lowest = names.OrderBy(n => naive[n].Similarity).Take(3).ToHashSet();

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, SafeLoraReport.FileName)))!;
        Assert.Equal("safelora", (string)report["method"]!);
        Assert.Equal(Irr.Jobs.Provenance.Version, (string)report["irr_version"]!);
        Assert.Equal("layers", (string)report["selection"]!["rule"]!);
        Assert.Equal(3, (int)report["selection"]!["layers"]!);
        Assert.Equal(Path.GetFullPath(s.Adapter), (string)report["inputs"]!["adapter"]!);
        Assert.Equal(Path.GetFullPath(s.Vector), (string)report["inputs"]!["safety_vector"]!);
        Assert.Equal(3, (int)report["matrices_projected"]!);
        var matrices = report["matrices"]!.AsArray();
        Assert.Equal(names, matrices.Select(m => (string)m!["name"]!));
        foreach (var m in matrices)
        {
            string name = (string)m!["name"]!;
            Close(naive[name].Similarity, (double)m["similarity"]!, 1e-9, name);
            Assert.Equal(lowest.Contains(name), (bool)m["projected"]!);
        }

        // The adapter: the same config file, the same A, B' = C·B where projected, B elsewhere.
        Assert.Equal(File.ReadAllBytes(Path.Combine(s.Adapter, LoraAdapter.ConfigFile)), File.ReadAllBytes(Path.Combine(output, LoraAdapter.ConfigFile)));
        using (var projected = LoraAdapter.Open(output))
        {
            Assert.Equal(8, projected.Pairs.Count);
            foreach (string name in names)
            {
                var pair = projected.Pairs[name];
                var (a, b, outDim, _) = s.Layers[name];
                Assert.Equal(TensorDType.F32, pair.B.DType);
                Assert.Equal(a, projected.File.ReadSingle(pair.A.Name));
                var written = projected.File.ReadSingle(pair.B.Name);
                if (!lowest.Contains(name)) { Assert.Equal(b, written); continue; }
                for (int i = 0; i < outDim; i++)
                    for (int k = 0; k < Rank; k++) Close(naive[name].CB[i, k], written[i * Rank + k], 1e-6, $"{name} B'[{i},{k}]");
            }
        }

        // Merged as any adapter: W_A + s·C·B·A for the projected matrices, W_A + s·B·A for the others.
        using var merged = CheckpointWeights.Open(s.Aligned, output);
        using var baseModel = ModelDirectory.Open(s.Aligned);
        foreach (string name in names)
        {
            var (a, b, outDim, inDim) = s.Layers[name];
            var w = baseModel.ReadSingle(name);
            float[] scratch = [];
            var got = merged.Load(name, ref scratch).ToArray();
            var cb = naive[name].CB;
            for (int i = 0; i < outDim; i++)
                for (int j = 0; j < inDim; j++)
                {
                    double delta = 0;
                    for (int k = 0; k < Rank; k++) delta += (lowest.Contains(name) ? cb[i, k] : b[i * Rank + k]) * a[k * inDim + j];
                    Close(w[i * inDim + j] + Alpha / Rank * delta, got[i * inDim + j], 1e-5, $"{name}[{i},{j}]");
                }
        }
    }

    [Fact]
    public void ThresholdProjectsTheMatricesBelowItAndKeepsTheStoredDType()
    {
        using var dir = new TempDir();
        var s = Make(dir, TensorDType.BF16);
        string first = Project(dir, s, "all", "--layers", "100").Output;
        var similarities = JsonNode.Parse(File.ReadAllText(Path.Combine(first, SafeLoraReport.FileName)))!["matrices"]!.AsArray()
            .Select(m => (double)m!["similarity"]!).ToList();
        double tau = similarities.Order().ElementAt(4); // 4 strictly below (the random similarities differ)

        string output = Project(dir, s, "safe", "--threshold", tau.ToString("R", System.Globalization.CultureInfo.InvariantCulture)).Output;
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, SafeLoraReport.FileName)))!;
        Assert.Equal("threshold", (string)report["selection"]!["rule"]!);
        Assert.Equal(tau, (double)report["selection"]!["threshold"]!);
        Assert.Equal(similarities.Select(x => x < tau), report["matrices"]!.AsArray().Select(m => (bool)m!["projected"]!));
        Assert.Equal(4, (int)report["matrices_projected"]!);
        using var adapter = LoraAdapter.Open(output);
        Assert.All(adapter.File.Tensors, t => Assert.Equal(TensorDType.BF16, t.DType));
        // A projected B is C·B rounded to bf16; an unprojected one is the input's, bit for bit.
        using var all = LoraAdapter.Open(first);
        foreach (var (name, pair) in adapter.Pairs)
        {
            Assert.Equal(s.Layers[name].A, adapter.File.ReadSingle(pair.A.Name));
            bool projected = similarities[report["matrices"]!.AsArray().Select(m => (string)m!["name"]!).ToList().IndexOf(name)] < tau;
            Assert.Equal(projected ? all.File.ReadSingle(all.Pairs[name].B.Name) : s.Layers[name].B, adapter.File.ReadSingle(pair.B.Name));
        }
    }

    [Fact]
    public void NoMatrixIsProjectedWithLayersZeroAndTheAdapterIsUnchanged()
    {
        using var dir = new TempDir();
        var s = Make(dir);
        Assert.Contains("projected 0 of 8", Project(dir, s, "safe", "--layers", "0").Err);
        string output = dir["safe"];
        using var input = SafetensorsFile.Open(Path.Combine(s.Adapter, LoraAdapter.WeightsFile));
        using var written = SafetensorsFile.Open(Path.Combine(output, LoraAdapter.WeightsFile));
        Assert.Equal(input.Tensors.Select(t => t.Name), written.Tensors.Select(t => t.Name));
        foreach (var t in input.Tensors) Assert.Equal(input.ReadSingle(t.Name), written.ReadSingle(t.Name));
        // An existing output is refused, and replaced with --overwrite.
        var (code, _, refused) = SafeLoraCli("--base", s.Aligned, "--adapter", s.Adapter, "--safety-vector", s.Vector, "--layers", "0", "-o", output);
        Assert.Equal(2, code);
        Assert.Contains("exists and is not empty", refused);
        Assert.Contains("projected 1 of 8", Project(dir, s, "safe", "--layers", "1", "--overwrite").Err);
    }

    public static TheoryData<string, string[], string> BadInputs() => new()
    {
        { "finetuned", ["--finetuned", "{finetuned}", "--layers", "1"], "Safe LoRA is defined for LoRA adapters" },
        { "model as adapter", ["--adapter", "{finetuned}", "--layers", "1"], "is a model directory (a full fine-tune), not a LoRA adapter" },
        { "no adapter", ["--layers", "1"], "adapter is required" },
        { "both", ["--adapter", "{adapter}", "--layers", "1", "--threshold", "0.5"], "give exactly one of threshold and layers" },
        { "neither", ["--adapter", "{adapter}"], "give exactly one of threshold and layers" },
        { "tau > 1", ["--adapter", "{adapter}", "--threshold", "1.5"], "threshold must be between -1 and 1, not 1.5" },
        { "tau < -1", ["--adapter", "{adapter}", "--threshold", "-2"], "threshold must be between -1 and 1, not -2" },
        { "K < 0", ["--adapter", "{adapter}", "--layers", "-1"], "layers must be at least 0, not -1" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadOptionsAreOneLineErrorsWithNoOutput(string what, string[] args, string expected)
    {
        using var dir = new TempDir();
        var s = Make(dir);
        var full = args.Select(a => a.Replace("{finetuned}", s.Finetuned).Replace("{adapter}", s.Adapter)).ToList();
        AssertRefused(dir, ["--base", s.Aligned, "--safety-vector", s.Vector, .. full], expected, what);
    }

    [Fact]
    public void ASafetyVectorMissingAModuleOrOfAnotherShapeIsRefused()
    {
        using var dir = new TempDir();
        var s = Make(dir, vectorModules: "q_proj,up_proj,down_proj");
        AssertRefused(dir, ["--base", s.Aligned, "--adapter", s.Adapter, "--safety-vector", s.Vector, "--layers", "1"],
            "the safety vector has no tensor 'model.layers.0.self_attn.v_proj.weight'", "missing module");

        // A vector whose v_proj is the transpose's shape.
        string wrong = dir["wrong.safetensors"];
        using (var v = SafetensorsFile.Open(s.Vector))
        {
            var specs = v.Tensors.Select(t => new TensorSpec(t.Name, TensorDType.F32, t.Shape.ToArray())).ToList();
            specs.Add(new TensorSpec("model.layers.0.self_attn.v_proj.weight", TensorDType.F32, [16, 8]));
            CheckpointWriter.WriteFile(wrong, specs, new Dictionary<string, string> { ["format"] = "pt" }, w =>
            {
                foreach (var t in specs) w.Write(t.Name, t.Name.Contains("v_proj") ? new float[128] : v.ReadSingle(t.Name));
            });
        }
        AssertRefused(dir, ["--base", s.Aligned, "--adapter", s.Adapter, "--safety-vector", wrong, "--layers", "1"],
            "tensor 'model.layers.0.self_attn.v_proj.weight' is [16, 8] but the model's weight is [8, 16]", "shape");
    }

    [Fact]
    public void APhi3AdapterOnTheFusedMatricesIsProjectedMatrixByMatrix()
    {
        // Phi-3's LoRA targets are the fused qkv_proj and gate_up_proj: each is one matrix with its own C = V·Vᵀ/‖V‖_F.
        using var dir = new TempDir();
        string json = FamilyRealignCommandTests.ChatConfig("phi3");
        string aligned = FamilyRealignCommandTests.ChatModel(dir, "aligned", json, 1), unaligned = FamilyRealignCommandTests.ChatModel(dir, "unaligned", json, 2);
        string vector = dir["v.safetensors"];
        var (code, _, err) = CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "-o", vector);
        Assert.True(code == 0, err);
        string[] targets = ["qkv_proj", "gate_up_proj"];
        var config = ModelConfig.Parse(json, "config.json");
        var rng = new Random(19);
        var layers = new[] { 0, 1 }.SelectMany(l => targets.Select(m => ModelConfig.LinearWeightName(l, m))).ToDictionary(n => n, n =>
        {
            var (outDim, inDim) = config.LinearShape(n.Split('.')[^2]);
            return (A: Tensors.Reference.Uniform(rng, Rank * inDim), B: Tensors.Reference.Uniform(rng, outDim * Rank), Out: outDim, In: inDim);
        });
        LoraAdapter.Write(dir["adapter"], LoraConfig.Create(Rank, Alpha, targets, aligned), layers.Select(kv => (kv.Key, kv.Value.A, kv.Value.B, kv.Value.Out, kv.Value.In)).ToList(), TensorDType.F32, [aligned]);
        (code, _, err) = SafeLoraCli("--base", aligned, "--adapter", dir["adapter"], "--safety-vector", vector, "--layers", "2", "-o", dir["safe"]);
        Assert.True(code == 0, err);

        using var vFile = SafetensorsFile.Open(vector);
        var naive = layers.ToDictionary(kv => kv.Key, kv =>
        {
            var c = NaiveC(vFile.ReadSingle(kv.Key), kv.Value.Out, kv.Value.In);
            return (Similarity: NaiveSimilarity(c, kv.Value.B, kv.Value.A, kv.Value.Out, Rank, kv.Value.In, Alpha / Rank), CB: NaiveCB(c, kv.Value.B, kv.Value.Out, Rank));
        });
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["safe"], SafeLoraReport.FileName)))!;
        Assert.Equal(layers.Keys, report["matrices"]!.AsArray().Select(m => (string)m!["name"]!));   // layer by layer, qkv before gate_up
        var lowest = layers.Keys.OrderBy(n => naive[n].Similarity).Take(2).ToHashSet();
        using var projected = LoraAdapter.Open(dir["safe"]);
        foreach (var (name, (a, b, outDim, _)) in layers)
        {
            var written = projected.File.ReadSingle(projected.Pairs[name].B.Name);
            if (!lowest.Contains(name)) { Assert.Equal(b, written); continue; }
            for (int i = 0; i < outDim; i++)
                for (int k = 0; k < Rank; k++) Close(naive[name].CB[i, k], written[i * Rank + k], 1e-6, $"{name} B'[{i},{k}]");
        }
    }

    [Fact]
    public void AnAdapterThatDoesNotFitTheBaseIsRefused()
    {
        using var dir = new TempDir();
        var s = Make(dir);
        string other = TinyModels.Create(dir["other"]); // intermediate 40, not 32
        AssertRefused(dir, ["--base", other, "--adapter", s.Adapter, "--safety-vector", s.Vector, "--layers", "1"],
            "does not fit the base weight", "other base");
    }

    private static void AssertRefused(TempDir dir, string[] args, string expected, string what)
    {
        string output = dir["safe"];
        var (code, stdout, err) = SafeLoraCli([.. args, "-o", output]);
        Assert.True(code == 2, $"{what}: exit {code}: {err}");
        Assert.Equal("", stdout);
        Assert.Contains(expected, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(Directory.Exists(output), what);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir.Path), p => Path.GetFileName(p).StartsWith(".safe", StringComparison.Ordinal));
    }

    [Fact]
    public void TheJobValidatesWithoutTouchingFiles()
    {
        var job = new SafeLoraJob { Base = "/nonexistent/base", Adapter = "/nonexistent/adapter", SafetyVector = "/nonexistent/v", OutputPath = "/nonexistent/out", Threshold = 0.5 };
        job.Validate();
        Assert.Equal("baseline safelora", job.Command);
        Assert.Equal(["/nonexistent/base", "/nonexistent/adapter", "/nonexistent/v"], job.Inputs);
        Assert.Equal("baseline safelora: threshold must be between -1 and 1, not NaN",
            Assert.Throws<IrrException>(() => (job with { Threshold = double.NaN }).Validate()).Message);
    }
}
