namespace Irr.Data;

/// <summary>
/// One example of a data set (Fisher data, calibration data, training data): the user's content and the answer,
/// read per IRR-SPEC "Formatting" by <see cref="DataFile"/> (the containers) and <see cref="DataRecord"/> (the fields):
/// an Alpaca record <c>{instruction, input, output}</c>, a <c>{prompt, response}</c> record, or any record with a user
/// message and an answer.
/// </summary>
/// <param name="User">The user message (<see cref="DataRecord.User"/>): <c>instruction</c>, or <c>instruction + "\n" + input</c> when input is not empty.</param>
/// <param name="Answer">The answer (<see cref="DataRecord.Answer"/>: <c>output</c> or <c>response</c>).</param>
public sealed record TrainingRecord(string User, string Answer)
{
    /// <summary>Reads a data file (<see cref="DataFile"/>).</summary>
    /// <exception cref="IrrException">The file is missing, empty or a record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Load(string path) => DataFile.Read(path).Select(Of).ToList();

    /// <summary>Reads records from the text of a data file; <paramref name="fileName"/> names it in errors and picks the container.</summary>
    /// <exception cref="IrrException">A record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Parse(string text, string fileName) => DataFile.Parse(text, fileName).Select(Of).ToList();

    /// <summary>The training view of one record: its user message and its answer.</summary>
    /// <exception cref="IrrException">The record has no user message or no answer.</exception>
    public static TrainingRecord Of(DataRecord record) => new(record.User(), record.Answer());
}
