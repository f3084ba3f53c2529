namespace Irr.IO;

/// <summary>The parts of a model directory's <c>generation_config.json</c> that irr uses.</summary>
public sealed class GenerationConfig
{
    /// <summary>eos_token_id (an int or a list in the file); empty when absent.</summary>
    public IReadOnlyList<int> EosTokenIds { get; private init; } = [];

    /// <summary>Reads <c>generation_config.json</c> from a model directory, or an empty config if there is none.</summary>
    public static GenerationConfig Load(string modelDirectory)
    {
        string path = Path.Combine(modelDirectory, "generation_config.json");
        if (!File.Exists(path)) return new GenerationConfig();
        var json = new JsonConfig(JsonFiles.ParseObject(JsonFiles.ReadText(path), path), path);
        return new GenerationConfig { EosTokenIds = json.IntOrIntList("eos_token_id") };
    }
}
