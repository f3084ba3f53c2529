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

    /// <summary>The largest sum of the record sizes of one file, in bytes: 256 MiB unless <c>IRR_MAX_DATA_BYTES</c> says otherwise.</summary>
    public static long DataBytes => Limits.Get(DataBytesVariable, 256L << 20);
}

/// <summary>Counts the records of one file against <see cref="DataLimits.Records"/> and <see cref="DataLimits.DataBytes"/>.</summary>
internal sealed class DataBudget(string file)
{
    private readonly long _records = DataLimits.Records, _bytes = DataLimits.DataBytes;
    private long _count, _total;

    /// <summary>Counts one record of <paramref name="bytes"/> bytes.</summary>
    /// <exception cref="IrrException">The file now has more records, or more bytes of them, than its limits.</exception>
    public void Add(long bytes)
    {
        if (++_count > _records) throw Limits.Exceeded(file, "the number of records", DataLimits.RecordsVariable, _records);
        if ((_total += bytes) > _bytes) throw Limits.Exceeded(file, "the records' total size in bytes", DataLimits.DataBytesVariable, _bytes);
    }
}
