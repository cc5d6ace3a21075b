// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

/// @title Notary
/// @notice Records that a digest (for example the SHA-256 or Keccak-256 of a
/// document) was seen, by whom and when. A digest can be notarised once.
contract Notary {
    struct Record {
        address by;
        uint256 blockNumber;
        uint256 timestamp;
        string meta;
    }

    mapping(bytes32 => Record) private records;

    event Notarized(bytes32 indexed digest, address indexed by, uint256 at, string meta);

    /// @notice Records digest with the caller, the current block and meta.
    /// Reverts with "already notarised" when digest was recorded before.
    function notarize(bytes32 digest, string calldata meta) external {
        require(records[digest].by == address(0), "already notarised");
        records[digest] = Record(msg.sender, block.number, block.timestamp, meta);
        emit Notarized(digest, msg.sender, block.number, meta);
    }

    /// @notice Returns the record of digest; zero values when there is none.
    function record(bytes32 digest)
        external
        view
        returns (address by, uint256 blockNumber, uint256 timestamp, string memory meta)
    {
        Record storage r = records[digest];
        return (r.by, r.blockNumber, r.timestamp, r.meta);
    }
}
