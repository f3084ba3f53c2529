using System.Text.Json.Nodes;

namespace Irr.Demo;

/// <summary>
/// The demo world's pretrained base model θ_base, made once by <c>irr demo pretrain</c> (<see cref="PretrainJob"/>) and
/// shipped inside the irr library (src/Irr/Demo/base/, embedded as resources), so that <c>irr demo</c> never pretrains:
/// it copies the base into its output as <c>models/base</c> and aligns it.
/// </summary>
public static class DemoBase
{
    /// <summary>The files of the base model directory, as <c>irr demo pretrain</c> writes them.</summary>
    public static IReadOnlyList<string> Files { get; } =
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "pretrain.json"];

    private const string ResourcePrefix = "Irr.Demo.base.";

    /// <summary>Whether this build of irr carries the base model.</summary>
    public static bool Shipped => typeof(DemoBase).Assembly.GetManifestResourceInfo(ResourcePrefix + "model.safetensors") is not null;

    /// <summary>
    /// Writes the base model into <paramref name="directory"/>: the shipped one when <paramref name="from"/> is null, else a
    /// copy of the model directory <paramref name="from"/> (a base rebuilt with <c>irr demo pretrain</c>).
    /// </summary>
    /// <exception cref="IrrException">The base is not shipped with this build, or <paramref name="from"/> is not a base (<see cref="Require"/>).</exception>
    public static void CopyTo(string? from, string directory)
    {
        Require(from);
        Directory.CreateDirectory(directory);
        var assembly = typeof(DemoBase).Assembly;
        foreach (string name in Files)
        {
            string target = Path.Combine(directory, name);
            if (from is not null)
            {
                IO.InputFile.RequireRegular(Path.Combine(from, name));
                File.Copy(Path.Combine(from, name), target);
                continue;
            }
            using var stream = assembly.GetManifestResourceStream(ResourcePrefix + name)
                ?? throw new IrrException($"this build of irr does not carry the demo's base model ({name}); rebuild it with irr demo pretrain -o DIR and run irr demo --base DIR");
            using var file = File.Create(target);
            stream.CopyTo(file);
        }
    }

    /// <summary>Checks that <paramref name="from"/>, when given, is a directory holding every file of <see cref="Files"/>.</summary>
    /// <exception cref="IrrException">It does not exist, or a file is missing; the message names it.</exception>
    public static void Require(string? from)
    {
        if (from is null) return;
        if (!Directory.Exists(from))
            throw new IrrException($"{Path.GetFullPath(from)}: no such directory (the base: a directory written by irr demo pretrain)");
        if (Files.FirstOrDefault(name => !File.Exists(Path.Combine(from, name))) is { } missing)
            throw new IrrException($"{Path.GetFullPath(from)}: not a base model of irr demo pretrain: {missing} is missing");
    }

    /// <summary>What demo.json records of the base: its config, its pretraining record and the SHA-256 of its weights.</summary>
    public static JsonObject Describe(string directory) => new()
    {
        ["model_safetensors_sha256"] = Jobs.ContentHash.Compute(Path.Combine(directory, "model.safetensors")),
        ["config"] = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "config.json"))),
        ["pretrain"] = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "pretrain.json"))),
    };
}
