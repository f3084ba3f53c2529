using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.Eval;

/// <summary>
/// <c>task.json</c> of an evaluation run directory, written by <c>irr eval task</c> (and the demo), read by
/// <c>irr report</c>.
/// </summary>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it, or null.</param>
/// <param name="Data">The task data file.</param>
/// <param name="Metric">exact, contains, gsm8k or choice.</param>
/// <param name="Total">Examples scored.</param>
/// <param name="Correct">Examples counted correct.</param>
public sealed record TaskRun(string Model, string? Adapter, string Data, string Metric, int Total, int Correct)
{
    /// <summary>Examples whose generation failed (a serving engine's, after its retries); counted incorrect.</summary>
    [JsonPropertyName("failed")]
    public int Failed { get; init; }

    /// <summary>Of <see cref="Failed"/>, the requests the engine refused by themselves (<see cref="OpenAiReply.Refused"/>: too long for it).</summary>
    [JsonPropertyName("refused")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Refused { get; init; }

    /// <summary>The file name inside a run directory.</summary>
    public const string FileName = "task.json";

    /// <summary>Correct / total in [0, 1]; 0 when there were no examples.</summary>
    [JsonPropertyName("accuracy")]
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;

    /// <summary>The 95% Wilson interval of <see cref="Accuracy"/> (<see cref="Intervals.Wilson"/>); null without examples.</summary>
    [JsonPropertyName("accuracy_ci")]
    public Interval? AccuracyInterval => Intervals.Wilson(Correct, Total);

    /// <summary>Writes this run to <c>DIR/task.json</c> (atomically).</summary>
    public void Save(string directory) => JsonFiles.Save(Path.Combine(directory, FileName), this);

    /// <summary>Reads <c>DIR/task.json</c>, or null when the directory has none.</summary>
    /// <exception cref="IrrException">The file exists but is not a valid task.json.</exception>
    public static TaskRun? Load(string directory) => JsonFiles.Load<TaskRun>(Path.Combine(directory, FileName));
}

