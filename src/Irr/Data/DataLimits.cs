using Irr.IO;

namespace Irr.Data;

/// <summary>
/// The budgets of a data file (docs/formats.md, "Data files and recipes"): every record is read by itself and refused
/// when longer than <see cref="RecordBytes"/>; a file is refused when its records are more than <see cref="Records"/> or
/// larger than <see cref="DataBytes"/> together, so that a huge file ends in one clear error in bounded memory rather than
/// running out of it. Each is raised (or lowered) by its environment variable (<see cref="Limits.Get"/>).
/// </summary>
public static class DataLimits
{
    /// <summary>The variable of <see cref="RecordBytes"/>.</summary>
    public const string RecordBytesVariable = "IRR_MAX_RECORD_BYTES";

    /// <summary>The variable of <see cref="Records"/>.</summary>
    public const string RecordsVariable = "IRR_MAX_RECORDS";

    /// <summary>The variable of <see cref="DataBytes"/>.</summary>
    public const string DataBytesVariable = "IRR_MAX_DATA_BYTES";

    /// <summary>The largest record (a JSONL line, a JSON array item, a CSV row, a paragraph), in bytes: 16 MiB unless <c>IRR_MAX_RECORD_BYTES</c> says otherwise.</summary>
    public static long RecordBytes => Limits.Get(RecordBytesVariable, 16L << 20);

    /// <summary>The most records of one file: 1,000,000 unless <c>IRR_MAX_RECORDS</c> says otherwise.</summary>
    public static long Records => Limits.Get(RecordsVariable, 1_000_000);

    /// <summary>
    /// The most memory the records of one file may take, in bytes: 256 MiB unless <c>IRR_MAX_DATA_BYTES</c> says otherwise.
    /// A record takes its size, and <see cref="BytesPerValue"/> more for each JSON value (counted by its separators) or CSV field.
    /// </summary>
    public static long DataBytes => Limits.Get(DataBytesVariable, 256L << 20);

    /// <summary>What a JSON value or CSV field costs in memory beyond its text (System.Text.Json keeps 12 bytes of metadata a value; a field is a reference and a string).</summary>
    public const int BytesPerValue = 16;

    /// <summary>The JSON values of a record's text, as many as its separators (<c>,</c> and <c>:</c>) and one: a bound from above for memory's sake.</summary>
    internal static long Values(ReadOnlySpan<byte> json) => json.Count((byte)',') + json.Count((byte)':') + 1L;

    /// <inheritdoc cref="Values(ReadOnlySpan{byte})"/>
    internal static long Values(ReadOnlySpan<char> json) => json.Count(',') + json.Count(':') + 1L;
}

/// <summary>Counts the records of one file against <see cref="DataLimits.Records"/> and <see cref="DataLimits.DataBytes"/>.</summary>
internal sealed class DataBudget(string file)
{
    private readonly long _records = DataLimits.Records, _bytes = DataLimits.DataBytes;
    private long _count, _total;

    /// <summary>Counts one record of <paramref name="bytes"/> bytes and <paramref name="values"/> JSON values or CSV fields.</summary>
    /// <exception cref="IrrException">The file now has more records, or records that take more memory, than its limits.</exception>
    public void Add(long bytes, long values = 1)
    {
        if (++_count > _records) throw Limits.Exceeded(file, "the number of records", DataLimits.RecordsVariable, _records);
        if ((_total += bytes + DataLimits.BytesPerValue * values) > _bytes)
            throw Limits.Exceeded(file, "the records' size in memory (bytes, and 16 a value or field)", DataLimits.DataBytesVariable, _bytes);
    }
}
